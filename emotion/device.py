"""Pick the torch device: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from emotion.errors import MoodtunesError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda > mps > cpu; an explicit name must be usable here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise MoodtunesError(f"Unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MoodtunesError("--device cuda was asked for but no CUDA GPU is usable here; use --device auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MoodtunesError("--device mps was asked for but MPS is not available here; use --device auto or cpu.")
    return device
