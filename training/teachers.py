"""Models that teach: the averaged, softened probabilities that ``training.train --teacher`` distils."""

from __future__ import annotations

import torch

from emotion.checkpoint import load_checkpoint
from emotion.errors import MoodtunesError
from emotion.model import fuse_batchnorm
from emotion.preprocess import normalize


class Teachers:
    """An ensemble of checkpoints run for their averaged, temperature-softened probabilities."""

    def __init__(self, paths: list[str], device: torch.device, input_size: int, amp_dtype: torch.dtype | None):
        self.models, self.norms = [], []
        for path in paths:
            ckpt = load_checkpoint(path)
            if ckpt.input_size != input_size:
                raise MoodtunesError(f"Teacher {path} takes {ckpt.input_size} px faces, the student {input_size} px; "
                                     "train the student with --input-size to match.")
            model = fuse_batchnorm(ckpt.model).to(device).to(memory_format=torch.channels_last)
            self.models.append(model)
            self.norms.append((ckpt.mean, ckpt.std))
        self.device, self.amp_dtype = device, amp_dtype

    @torch.no_grad()  # not inference_mode: the result enters the student's loss, which autograd tracks
    def probabilities(self, views: torch.Tensor, temperature: float) -> torch.Tensor:
        """Averaged probabilities for uint8 (or mixed float 0..255) faces (N, 1, H, W)."""
        total = 0
        for model, (mean, std) in zip(self.models, self.norms, strict=True):
            x = normalize(views, mean, std).to(self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                logits = model(x).float()
            total = total + (logits / temperature).softmax(1)
        return total / len(self.models)
