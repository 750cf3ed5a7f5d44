"""What the network sees in training: per-face augmentation, webcam damage for the student, mixup and CutMix."""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from training.corruptions import corrupt_random


class AugmentedFaces(Dataset):
    """uint8 faces (1, H, W) through per-sample augmentation: (view, student's view, target).

    The view is what teachers see; the student's view is the same picture, damaged by one
    webcam corruption with probability ``corrupt``.
    """

    def __init__(self, images: np.ndarray, targets: torch.Tensor, augment: v2.Transform, corrupt: float) -> None:
        self.images = torch.from_numpy(images).unsqueeze(1)
        self.targets = targets
        self.augment = augment
        self.corrupt = corrupt

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        view = self.augment(self.images[i])
        student_view = view
        if self.corrupt > 0 and torch.rand(()) < self.corrupt:
            # Seeded from torch's generator, which DataLoader seeds per worker and train() per epoch.
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
            student_view = torch.from_numpy(corrupt_random(view[0].numpy(), rng)).unsqueeze(0)
        return view, student_view, self.targets[i]


def build_augmentation(args: argparse.Namespace) -> v2.Transform:
    # One RandomAffine does rotation, shift and zoom in a single resampling (half the cost
    # of a RandomResizedCrop followed by a rotation, and no double blur).
    return v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=args.rotate, translate=(args.shift, args.shift),
                        scale=(1 - args.scale, 1 + args.scale)),
        v2.ColorJitter(brightness=args.jitter, contrast=args.jitter),
        v2.RandomErasing(p=args.erase, scale=(0.02, 0.15), value=0),
    ])


def mix_batch(views: list[torch.Tensor], targets: torch.Tensor, args: argparse.Namespace
              ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Mixup or CutMix, the same pairs and proportions for every view; targets mix likewise."""
    if args.mixup <= 0 and args.cutmix <= 0:
        return views, targets
    use_cutmix = args.cutmix > 0 and (args.mixup <= 0 or torch.rand(()) < 0.5)
    alpha = args.cutmix if use_cutmix else args.mixup
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(targets))
    if use_cutmix:
        h, w = views[0].shape[-2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = []
        for v in views:
            v = v.clone()
            v[..., y0:y1, x0:x1] = v[perm][..., y0:y1, x0:x1]
            mixed.append(v)
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the share actually kept
    else:
        mixed = [lam * v + (1 - lam) * v[perm] for v in views]
    return mixed, lam * targets + (1 - lam) * targets[perm]
