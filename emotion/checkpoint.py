"""The checkpoint format: weights plus everything needed to use and trust them.

A checkpoint is a dict saved with torch.save and read back with ``weights_only=True``:

    format, format_version   identify the file as a moodtunes emotion checkpoint
    model_config             the network's shape: EmotionNetConfig.to_dict() (lists, not tuples)
    ensemble                 optional: {"members": n, "mirror": bool} for a MirrorEnsemble of n networks of
                             that shape (weights under "members.<i>."); without it, one network
    classes                  class names in output order (must equal EMOTIONS)
    input_size               side of the square gray input in pixels
    normalization            {"mean": float, "std": float} on the 0..1 pixel scale
    state_dict               the weights
    decision                 optional: the logit adjustment chosen on validation (emotion.decision);
                             without it the model decides by the plain argmax
    metadata                 dataset, metrics, command, date, git commit, ...
    training_state           optional, in last.pt: epoch, optimiser, plateau scheduler, GradScaler and
                             EMA state, best score, epochs without gain and the run's arguments.
                             No RNG state: training reseeds every epoch from (seed, epoch), which is
                             what makes --resume exact.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from emotion.atomic import atomic_write
from emotion.classes import EMOTIONS
from emotion.decision import DecisionRule
from emotion.errors import CheckpointError
from emotion.model import CustomDeepEmotionNet, EmotionNetConfig, MirrorEnsemble

FORMAT = "moodtunes-emotion-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    model: CustomDeepEmotionNet | MirrorEnsemble
    classes: tuple[str, ...]
    input_size: int
    mean: float
    std: float
    metadata: dict[str, Any] = field(default_factory=dict)
    decision: DecisionRule = field(default_factory=DecisionRule)
    training_state: dict[str, Any] | None = None
    path: Path | None = None


def save_checkpoint(
    path: str | os.PathLike,
    model: CustomDeepEmotionNet | MirrorEnsemble,
    *,
    mean: float,
    std: float,
    metadata: dict[str, Any],
    decision: DecisionRule | None = None,
    training_state: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file intact."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "classes": list(EMOTIONS),
        "input_size": model.config.input_size,
        "normalization": {"mean": float(mean), "std": float(std)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    if isinstance(model, MirrorEnsemble):
        payload["ensemble"] = {"members": len(model.members), "mirror": model.mirror}
    if decision is not None and (decision.prior is not None or decision.typical_neutral is not None):
        payload["decision"] = decision.to_dict()
    if training_state is not None:
        payload["training_state"] = training_state
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, buffer.getvalue())


def _unsafe_globals(path: Path) -> list[str]:
    """The pickled classes and functions that weights_only loading refuses (e.g. ``posix.getcwd``), found
    without unpickling; none when the file is no torch.save archive at all."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # damaged or foreign files: torch.load's own error says what is wrong
        return []


def _reason(exc: BaseException) -> str:
    """A short, specific reason from torch.load's error, without its advice to unpickle unsafely."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return lines[i + 1]
    return (lines[0] if lines else type(exc).__name__)[:160]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; any problem raises CheckpointError with one line."""
    path = Path(path)
    payload = _read_payload(path, map_location)
    _check_format(path, payload)
    model = _build_model(path, payload)
    mean, std = _normalization(path, payload)
    model.eval()
    return Checkpoint(
        model=model,
        classes=tuple(payload["classes"]),
        input_size=int(payload["input_size"]),
        mean=mean,
        std=std,
        metadata=dict(payload.get("metadata", {})),
        decision=DecisionRule.from_dict(payload.get("decision")),
        training_state=payload.get("training_state"),
        path=path,
    )


def _read_payload(path: Path, map_location: str | torch.device) -> Any:
    """The unpickled file, weights only; a missing, foreign, damaged or unsafe file is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint not found: {path}. Check the path: a checkpoint is a .pt file written by "
            "`python -m training.train`."
        )
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path} is an exported ONNX model; this needs the .pt checkpoint it was exported from.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load raises many types on damaged or foreign files
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise CheckpointError(
                f"{path} holds Python objects besides weights and is refused for safety "
                f"(it pickles {', '.join(unsafe)}). "
                "Use a checkpoint written by `python -m training.train`."
            ) from exc
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated, corrupt or another kind of file: "
            f"{_reason(exc)}). Re-download it or retrain with `python -m training.train`."
        ) from exc


def _check_format(path: Path, payload: Any) -> None:
    """A moodtunes checkpoint of this format version, with every entry, for the classes in EMOTIONS."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a moodtunes emotion checkpoint. "
            "Use a checkpoint written by `python -m training.train`."
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {payload.get('format_version')}; this moodtunes "
            f"reads version {FORMAT_VERSION}. Update moodtunes or retrain the model."
        )
    missing = [k for k in ("model_config", "classes", "input_size", "normalization", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it is incomplete. Retrain the model.")
    classes = tuple(payload["classes"])
    if classes != EMOTIONS:
        raise CheckpointError(
            f"{path} predicts {len(classes)} classes ({', '.join(map(str, classes))}); moodtunes needs "
            f"the {len(EMOTIONS)} classes {', '.join(EMOTIONS)} in that order. Use a matching checkpoint."
        )


def _build_model(path: Path, payload: dict) -> CustomDeepEmotionNet | MirrorEnsemble:
    """The network (or ensemble) the checkpoint describes, with its weights loaded."""
    config = dict(payload["model_config"])
    ensemble = payload.get("ensemble")
    if ensemble is not None and not (
            isinstance(ensemble, dict) and isinstance(ensemble.get("members"), int) and ensemble["members"] >= 1
            and isinstance(ensemble.get("mirror"), bool)):
        raise CheckpointError(f"{path}: its ensemble entry {ensemble!r} is not a member count and a mirror flag; "
                              "write it again with `python -m training.combine`.")
    classes = len(EMOTIONS)
    prefix = "members.0." if ensemble else ""
    outputs = payload["state_dict"].get(prefix + "classifier.weight")
    if config.get("num_classes", classes) != classes or (
            outputs is not None and getattr(outputs, "shape", (None,))[0] != classes):
        raise CheckpointError(
            f"{path}: its output layer has {config.get('num_classes')} classes but it names {classes}; "
            "the file is inconsistent. Retrain the model or use a checkpoint written by `python -m training.train`."
        )
    try:
        shape = EmotionNetConfig.from_dict(config)
        model = (MirrorEnsemble([CustomDeepEmotionNet(shape) for _ in range(ensemble["members"])], ensemble["mirror"])
                 if ensemble else CustomDeepEmotionNet(shape))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: the weights do not fit the architecture stored with them ({detail}). "
            "The file was edited or written by an incompatible version; retrain the model."
        ) from exc
    if model.config.input_size != payload["input_size"]:
        raise CheckpointError(
            f"{path}: input size {payload['input_size']} disagrees with the model's {model.config.input_size}; "
            "retrain the model."
        )
    return model


def _normalization(path: Path, payload: dict) -> tuple[float, float]:
    """The stored pixel mean and (positive) std."""
    norm = payload["normalization"]
    try:
        mean, std = float(norm["mean"]), float(norm["std"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: normalization must give a mean and a std; retrain the model.") from exc
    if not std > 0:
        raise CheckpointError(f"{path}: normalization std must be positive, got {std}; retrain the model.")
    return mean, std
