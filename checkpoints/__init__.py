"""The emotion models that ship with moodtunes, installed as package data (see MODEL_CARD.md).

Run-time code finds them through :func:`shipped`, never through a path relative to the
source tree, so ``pip install .`` (not only ``-e``) works from any directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(filename: str) -> Path:
    """Path of ``filename`` in this package, wherever moodtunes is installed."""
    return Path(str(files(__name__) / filename))
