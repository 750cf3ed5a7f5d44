"""Export a checkpoint to ONNX for the app's CPU backends (ONNX Runtime, OpenCV's DNN module), and check it.

    python -m training.export --checkpoint checkpoints/emotion_ferplus.pt --out checkpoints/emotion_ferplus.onnx

The ONNX file carries what the app needs to use it (class names, input size, normalisation)
and where it came from (the checkpoint's name, SHA-256 and metadata) in its metadata_props.
BatchNorm is folded into the convolutions first; the batch dimension stays dynamic. After
writing, OpenCV and ONNX Runtime (where installed) load the file and must agree with PyTorch on
random faces, or the export fails. Needs the `onnx` and `onnxscript` packages (pip install "moodtunes[train]").
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from emotion.checkpoint import load_checkpoint
from emotion.classifier import ONNX_CLASSIFIERS, ONNX_FORMAT, onnxruntime_installed
from emotion.cli import error
from emotion.errors import MoodtunesError
from emotion.model import fuse_batchnorm
from emotion.preprocess import normalize
from training.cli import output_file, script_parser

ONNX_FORMAT_VERSION = "1"


def export_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """Write ``out`` (atomically) from ``checkpoint`` and verify it on the CPU runtimes; returns ``out``."""
    checkpoint, out = Path(checkpoint), Path(out)
    ckpt = load_checkpoint(checkpoint)
    model = fuse_batchnorm(ckpt.model).eval()
    example = torch.zeros(2, 1, ckpt.input_size, ckpt.input_size)
    try:
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=["face"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("faces", min=1, max=1024)},), verbose=False,
        )
    except ImportError as exc:
        raise MoodtunesError(f"ONNX export needs the onnx and onnxscript packages ({exc}); "
                             'pip install "moodtunes[train]".') from exc
    program.model.metadata_props.update({
        "format": ONNX_FORMAT,
        "format_version": ONNX_FORMAT_VERSION,
        "classes": json.dumps(list(ckpt.classes)),
        "input_size": str(ckpt.input_size),
        "normalization": json.dumps({"mean": ckpt.mean, "std": ckpt.std}),
        "input": f"face: float32 (N, 1, {ckpt.input_size}, {ckpt.input_size}), gray / 255, minus mean, over std",
        "output": "logits: float32 (N, classes); softmax gives the probabilities",
        "source_checkpoint": checkpoint.name,
        "source_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "checkpoint_metadata": json.dumps(ckpt.metadata),
        "decision": json.dumps(ckpt.decision.to_dict()),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target, checked, then renamed: a failed export never replaces a good file.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as tmp:
        candidate = Path(tmp) / out.name
        program.save(str(candidate), external_data=False)
        verify(model, candidate, ckpt.input_size)
        candidate.replace(out)
    return out


def verify(model: torch.nn.Module, onnx_path: Path, input_size: int, n: int = 64) -> float:
    """Largest logit difference between PyTorch and each CPU runtime the app may use (OpenCV, and ONNX
    Runtime where installed) on ``n`` random faces; raises if large."""
    faces = np.random.default_rng(0).integers(0, 256, (n, input_size, input_size), dtype=np.uint8)
    largest, expected = 0.0, None
    for backend, open_onnx in ONNX_CLASSIFIERS.items():
        if backend == "onnxruntime" and not onnxruntime_installed():
            continue
        classifier = open_onnx(onnx_path)  # as the app opens it: its metadata must read back too
        if expected is None:  # PyTorch's answer, once, normalised as the file's metadata says
            with torch.inference_mode():
                expected = model(normalize(torch.from_numpy(faces), classifier.mean, classifier.std)).numpy()
        difference = float(np.abs(classifier.logits(faces) - expected).max())
        if difference > 1e-3:
            raise MoodtunesError(f"{classifier.runtime_name} disagrees with PyTorch on {onnx_path.name} (max logit "
                                 f"difference {difference:.2g}); the export is not usable.")
        largest = max(largest, difference)
    return largest


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.export", __doc__)
    p.add_argument("--checkpoint", required=True, help="a .pt written by python -m training.train")
    p.add_argument("--out", help="the .onnx to write (default: next to the checkpoint, same name)")
    args = p.parse_args(argv)
    try:
        out = output_file(args.out, ".onnx") if args.out else Path(args.checkpoint).with_suffix(".onnx")
        export_onnx(args.checkpoint, out)
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    print(json.dumps({"onnx": str(out), "checkpoint": args.checkpoint, "bytes": out.stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
