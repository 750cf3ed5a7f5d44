"""The emotion network behind one small interface, on the backend that suits the machine.

- ONNX Runtime runs the ONNX export of a checkpoint on the CPU: the same numbers as PyTorch
  (to ~1e-5), half the time per face of OpenCV's DNN module (0.61 against 1.23 ms in a batch of
  eight on a 2-core CPU, ``python tests/bench.py batch``), and no torch import, which costs
  seconds and hundreds of MB (over 600 MB with the CUDA build that PyPI gives by default).
  The shipped model runs there in int8 (``training.quantize``): 0.2 ms per face in that batch.
- OpenCV's DNN module runs the float32 file where ONNX Runtime is not installed. It refuses int8
  files: it runs them, but reads 16 % of FER+ test faces differently from ONNX Runtime.
- torch runs the ``.pt`` checkpoint on CUDA, Apple's MPS, or the CPU when asked.

``open_classifier`` picks: ``auto`` uses torch when a GPU is there, else ONNX Runtime, else OpenCV.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import importlib.util
import json
import platform
import sys
from functools import cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from checkpoints import shipped
from emotion.classes import EMOTIONS
from emotion.decision import DecisionRule
from emotion.device import device_name
from emotion.errors import CheckpointError, MoodtunesError
from emotion.preprocess import normalize

BACKENDS = ("auto", "onnxruntime", "opencv", "torch")
ONNX_BACKENDS = ("onnxruntime", "opencv")  # what runs an .onnx file on the CPU, best first
DEFAULT_MODEL = "emotion_ferplus"
SHIPPED_MODELS = ("emotion_ferplus", "emotion_fer2013")  # --checkpoint takes these names too
ONNX_FORMAT = "moodtunes-emotion-onnx"


class Classifier(Protocol):
    path: Path
    backend: str  # "onnxruntime", "opencv" or "torch"
    device: str  # "cpu", "cuda:0", "mps"
    precision: str  # "float32", "bfloat16", "float16", or "int8" (an ONNX twin written by training.quantize)
    input_size: int
    metadata: dict
    decision: DecisionRule  # the model's own logit adjustment and typical neutral (emotion.decision)
    model_id: str  # SHA-256 of the checkpoint: a .pt and its ONNX twin share it (calibrations are tied to it)

    def logits(self, faces: np.ndarray) -> np.ndarray:
        """The network's raw outputs (N, 7) as float32 for uint8 gray faces (N, input_size, input_size)."""
        ...

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) in EMOTIONS order, by the model's own rule: ``decision.probabilities(logits)``."""
        ...


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX model, read straight from its protobuf bytes.

    A dozen lines instead of the onnx package (15 MB and protobuf, a third of a second at
    start-up) to read four strings: ModelProto field 14 holds key (1) / value (2) pairs, and
    every other top-level field (the 9 MB graph included) is skipped by its length.
    """
    data = memoryview(Path(path).read_bytes())
    props: dict[str, str] = {}
    for field, value in _protobuf_fields(data):
        if field == 14 and isinstance(value, memoryview):
            entry = dict(_protobuf_fields(value))
            props[bytes(entry.get(1, b"")).decode()] = bytes(entry.get(2, b"")).decode()
    return props


def _protobuf_fields(data: memoryview):
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i : i + length], i + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i : i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if i > len(data):
            raise ValueError("truncated protobuf")
        yield field, value


def _varint(data: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated protobuf")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


class OnnxClassifier:
    """An ONNX model written by ``python -m training.export``, run on the CPU by a subclass's runtime.

    This class reads and checks the moodtunes metadata (classes, input size, normalisation,
    decision rule); ``_load`` and ``_forward`` are the runtime's.
    """

    backend = ""
    runtime_name = ""
    shipped_suffix = ""  # which of the shipped model's files this runtime opens by default
    device = "cpu"
    precision = "float32"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"Model not found: {self.path}. Check the path: --checkpoint takes a .pt checkpoint "
                                  "(from `python -m training.train`), a .onnx model (from `python -m training.export`) "
                                  f"or a shipped model's name ({', '.join(SHIPPED_MODELS)}).")
        try:
            props = read_onnx_metadata(self.path)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{self.path} is not a readable ONNX model ({exc}).") from exc
        if props.get("format") != ONNX_FORMAT:
            raise CheckpointError(f"{self.path} is not a moodtunes emotion model (no moodtunes metadata); "
                                  "export one with `python -m training.export`.")
        try:
            classes = tuple(json.loads(props["classes"]))
            self.input_size = int(props["input_size"])
            norm = json.loads(props["normalization"])
            self.mean, self.std = float(norm["mean"]), float(norm["std"])
            self.metadata = json.loads(props.get("checkpoint_metadata", "{}"))
            self.decision = DecisionRule.from_dict(json.loads(props.get("decision", "null")))
            self.model_id = props.get("source_sha256") or hashlib.sha256(self.path.read_bytes()).hexdigest()
            self.precision = props.get("precision", "float32")  # int8: written by training.quantize
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{self.path}: its moodtunes metadata is incomplete ({exc}); export it again.") \
                from exc
        if classes != EMOTIONS:
            raise CheckpointError(f"{self.path} predicts {', '.join(classes)}; moodtunes needs {', '.join(EMOTIONS)} "
                                  "in that order. Use a matching model.")
        if not self.std > 0:
            raise CheckpointError(f"{self.path}: normalization std must be positive; export it again.")
        try:
            self._load()
            outputs = self.logits(np.zeros((1, self.input_size, self.input_size), np.uint8)).shape
        except self._load_errors() as exc:
            reason = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{self.path} cannot be run by {self.runtime_name} ({reason}).") from exc
        if outputs != (1, len(classes)):
            raise CheckpointError(f"{self.path}: the network gives {outputs[1:]} outputs for {len(classes)} named "
                                  "classes; the file is inconsistent. Export it again.")

    def _load(self) -> None:
        raise NotImplementedError

    def _load_errors(self) -> tuple[type[Exception], ...]:
        """What the runtime raises for a file it cannot run, reported as one CheckpointError line."""
        raise NotImplementedError

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def logits(self, faces: np.ndarray) -> np.ndarray:
        """The network's raw outputs (N, 7) for uint8 gray faces (N, input_size, input_size)."""
        if len(faces) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self._forward(normalize(faces, self.mean, self.std))

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        return self.decision.probabilities(self.logits(faces))


class OnnxRuntimeClassifier(OnnxClassifier):
    """The ONNX model on ONNX Runtime's CPU provider: the app's CPU backend where it is installed.

    It uses as many threads as OpenCV's pool (``cv2.getNumThreads()``, which ``main.configure_process``
    sets), so one setting sizes the whole app. Its workers do not spin while they wait for work: with
    one busy process per core (a laptop with a browser open) spinning workers took a batch of eight
    faces from 4.2 to 12-16 ms, not spinning to 8.4-9.8 ms, for 0.2 ms more on an idle machine
    (4.4 ms; same run, 2-core CPU).
    """

    backend = "onnxruntime"
    runtime_name = "ONNX Runtime"
    shipped_suffix = ".int8.onnx"  # the shipped int8 twin, written by training.quantize (see open_classifier)

    def _load(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, cv2.getNumThreads())
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its warnings are not the user's business
        self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def _load_errors(self) -> tuple[type[Exception], ...]:
        from onnxruntime.capi import onnxruntime_pybind11_state as state  # where ONNX Runtime defines them

        return (state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf, state.NoSuchFile,
                state.NotImplemented, state.RuntimeException)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]


class OpenCVClassifier(OnnxClassifier):
    """The ONNX model on OpenCV's DNN module: no dependency beyond OpenCV itself."""

    backend = "opencv"
    runtime_name = "OpenCV's DNN module"
    shipped_suffix = ".onnx"  # the float32 twin: int8 files it refuses (see _load), and ran them slower (3.6 ms/face)

    def _load(self) -> None:
        if self.precision == "int8":
            # It runs, but reads 16 % of FER+ test faces differently from ONNX Runtime, which agrees
            # with the float model on 99.1 %: a wrong answer given quietly is worse than none.
            twin = self.path.with_name(self.path.name.removesuffix(".int8.onnx") + ".onnx")
            float_file = f", or give OpenCV the float model {twin}" if twin != self.path and twin.is_file() else ""
            raise CheckpointError(f"{self.path} is an int8 model, which OpenCV's DNN module reads differently from "
                                  f"the float model it was made from: run it with --backend onnxruntime{float_file}.")
        self._net = cv2.dnn.readNetFromONNX(str(self.path))
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def _load_errors(self) -> tuple[type[Exception], ...]:
        return (cv2.error,)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        self._net.setInput(x)
        return self._net.forward()


class TorchClassifier:
    """A ``.pt`` checkpoint run by PyTorch: BatchNorm folded, channels-last, half precision where it pays."""

    backend = "torch"

    def __init__(self, path: str | Path, device: str = "auto", precision: str | None = None) -> None:
        """``precision``: float32, bfloat16 or float16; default: what the app runs on ``device``."""
        try:
            import torch
        except ImportError as exc:
            # What asked for PyTorch: a GPU named with --device, else a .pt checkpoint or --backend torch.
            why, instead = ((f"for --device {device}", "leave --device out") if device not in ("auto", "cpu") else
                            ("a .pt checkpoint, or --backend torch", "use an .onnx model (the shipped one by default)"))
            raise MoodtunesError(
                f"PyTorch runs {Path(path).name} here ({why}), and it is not installed: "
                'pip install "moodtunes[gpu]", '
                f"or {instead} to run on the CPU without it."
            ) from exc

        from emotion.checkpoint import load_checkpoint
        from emotion.device import inference_dtype, resolve_device
        from emotion.model import fuse_batchnorm

        self._torch = torch
        self.path = Path(path)
        ckpt = load_checkpoint(self.path)
        self._device = resolve_device(device)
        self._dtype = getattr(torch, precision) if precision else inference_dtype(self._device)
        self.device, self.precision = str(self._device), str(self._dtype).removeprefix("torch.")
        self.input_size, self.mean, self.std, self.metadata = ckpt.input_size, ckpt.mean, ckpt.std, ckpt.metadata
        self.decision = ckpt.decision
        self.model_id = hashlib.sha256(self.path.read_bytes()).hexdigest()
        # Channels-last layout picks oneDNN's fast convolutions on the CPU.
        self._model = fuse_batchnorm(ckpt.model).to(self._device, self._dtype).to(
            memory_format=torch.channels_last).eval()

    def logits(self, faces: np.ndarray) -> np.ndarray:
        torch = self._torch
        if len(faces) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        with torch.inference_mode():
            x = normalize(torch.from_numpy(np.ascontiguousarray(faces)).to(self._device), self.mean, self.std)
            x = x.to(self._dtype).contiguous(memory_format=torch.channels_last)
            return self._model(x).float().cpu().numpy()

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        return self.decision.probabilities(self.logits(faces))


@cache
def gpu_probably_available() -> bool:
    """Whether torch would find a GPU here, told without importing torch.

    NVIDIA: the driver's libcuda answers cuInit and counts devices in milliseconds. Apple
    silicon: MPS. Only then is torch imported to decide for sure.
    """
    if importlib.util.find_spec("torch") is None:
        return False
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    name = ctypes.util.find_library("cuda") or ("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    try:
        cuda = ctypes.CDLL(name)
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except (OSError, AttributeError):
        return False


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def choose_backend(backend: str, device: str, checkpoint: str | Path | None) -> str:
    """``onnxruntime``, ``opencv`` or ``torch`` for this request (see the module's docstring)."""
    if backend not in BACKENDS:
        raise MoodtunesError(f"Unknown backend {backend!r}: use one of {', '.join(BACKENDS)}.")
    device_name(device)
    suffix = Path(checkpoint).suffix.lower() if checkpoint else ""
    on_cpu = device in ("auto", "cpu")
    if backend == "torch" and suffix == ".onnx":
        raise MoodtunesError(f"The torch backend runs .pt checkpoints, not {checkpoint}; use --backend onnxruntime "
                             "or opencv.")
    if backend in ONNX_BACKENDS or suffix == ".onnx":
        if not on_cpu:
            raise MoodtunesError(f"ONNX models run on the CPU (ONNX Runtime or OpenCV); use a .pt checkpoint and "
                                 f"--backend torch for --device {device}.")
        if suffix == ".pt":
            raise MoodtunesError(f"The {backend} backend runs .onnx models; export {checkpoint} with "
                                 f"`python -m training.export --checkpoint {checkpoint}`, or use --backend torch.")
        return cpu_onnx_backend(backend)
    if backend == "torch" or suffix == ".pt" or not on_cpu:
        return "torch"  # a training checkpoint runs in torch, as it was trained
    if device == "auto" and gpu_probably_available():
        from emotion.device import resolve_device

        if resolve_device("auto").type != "cpu":
            return "torch"
    return cpu_onnx_backend("auto")


def cpu_onnx_backend(backend: str) -> str:
    """What runs an .onnx here: the one asked for, else ONNX Runtime where installed, else OpenCV."""
    if backend == "onnxruntime" and not onnxruntime_installed():
        raise MoodtunesError("--backend onnxruntime needs ONNX Runtime, which is not installed: pip install "
                             "onnxruntime (or use --backend opencv).")
    if backend in ONNX_BACKENDS:
        return backend
    return "onnxruntime" if onnxruntime_installed() else "opencv"


ONNX_CLASSIFIERS = {"onnxruntime": OnnxRuntimeClassifier, "opencv": OpenCVClassifier}


def shipped_name(checkpoint: str | Path | None) -> str | None:
    """The shipped model that ``checkpoint`` names (:data:`SHIPPED_MODELS`), or None for a file (a file of
    that name in the current folder is the file)."""
    if checkpoint is not None and str(checkpoint) in SHIPPED_MODELS and not Path(checkpoint).exists():
        return str(checkpoint)
    return None


def open_classifier(checkpoint: str | Path | None = None, device: str = "auto", backend: str = "auto") -> Classifier:
    """The emotion classifier for ``checkpoint`` (default: the shipped FER+ model) on the best backend.

    ``checkpoint`` is a file, or a shipped model's name (:data:`SHIPPED_MODELS`): the name works after
    ``pip install .``, where the files live in site-packages. A shipped model opens on ONNX Runtime as
    its int8 twin: a third of float32's time per face, 99.47 % of validation faces given the same label
    (README, "Speed and memory"). A file that is named is opened as it is.
    """
    named = shipped_name(checkpoint)
    name, checkpoint = (named, None) if named else (DEFAULT_MODEL, checkpoint)
    chosen = choose_backend(backend, device, checkpoint)
    if chosen in ONNX_CLASSIFIERS:
        runtime = ONNX_CLASSIFIERS[chosen]
        return runtime(checkpoint or shipped(name + runtime.shipped_suffix))
    return TorchClassifier(checkpoint or shipped(f"{name}.pt"), device)
