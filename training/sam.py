"""Sharpness-aware minimisation (Foret et al. 2021): the two halves of a SAM step, and what keeps
BatchNorm's statistics out of its second pass. ``training.train --sam RHO`` uses them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@torch.no_grad()
def climb_to_sharpest(model: torch.nn.Module, rho: float) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """SAM's first half (Foret et al. 2021): move the weights ``rho`` along their gradient, towards the
    highest loss nearby. Returns each moved parameter with its original value, for :func:`climb_back`.

    The direction is the gradient's, so a GradScaler's scale does not change it; a gradient that
    overflowed (GradScaler then skips the step anyway) moves nothing.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return []
    # By hand: torch.nn.utils.get_total_norm arrived in torch 2.6, and the project supports 2.5.
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
    if not math.isfinite(norm) or norm == 0:
        return []
    moved = []
    for p in params:
        moved.append((p, p.detach().clone()))
        p.add_(p.grad, alpha=rho / norm)
    return moved


@torch.no_grad()
def climb_back(moved: list[tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
    """Restore the weights :func:`climb_to_sharpest` moved, exactly (adding and subtracting would round)."""
    for p, original in moved:
        p.copy_(original)


@contextmanager
def batchnorm_stats_frozen(model: torch.nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise as in training but keep their running statistics: SAM's second
    forward pass runs on perturbed weights, whose activations are not the network's own."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 0.0  # running = (1 - momentum) * running + momentum * batch: unchanged
    try:
        yield
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
