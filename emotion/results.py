"""What the engine says about a face: :class:`FaceResult`, and which face of a frame is the main one.

A leaf: the recognizer makes results, the pipeline, the tracker and the calibration read them,
and none of them has to import another to share this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from emotion.preprocess import Box


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame. Immutable, so it can be handed to another thread as it is."""

    box: Box  # x, y, w, h in frame pixels
    landmarks: np.ndarray | None  # (5, 2) eyes, nose, mouth corners, read-only; None from Haar
    probabilities: Mapping[str, float]  # one entry per class in EMOTIONS, read-only; as the model decides
    label: str
    confidence: float
    logits: np.ndarray | None = None  # (7,) the network's raw outputs, read-only: what a calibration averages

    def __post_init__(self) -> None:
        object.__setattr__(self, "probabilities", MappingProxyType(dict(self.probabilities)))
        for name in ("landmarks", "logits"):
            value = getattr(self, name)
            if value is not None:
                frozen = np.array(value, dtype=np.float32)
                frozen.flags.writeable = False
                object.__setattr__(self, name, frozen)

    def to_dict(self, reduction: float = 1.0) -> dict:
        """JSON-ready; ``reduction`` (original pixels per frame pixel) maps the box onto the original image when it
        was decoded reduced."""
        return {
            "box": [round(v * reduction) for v in self.box],
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }


class _Boxed(Protocol):
    @property
    def box(self) -> Box: ...


Boxed = TypeVar("Boxed", bound=_Boxed)  # what main_face chooses among: results or tracks


def main_face_score(box: Box, frame_size: tuple[int, int]) -> float:
    """Area, discounted by up to half for distance from the frame centre."""
    width, height = frame_size
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    distance = math.hypot(cx - width / 2, cy - height / 2) / max(math.hypot(width / 2, height / 2), 1e-9)
    return box[2] * box[3] * (1.0 - 0.5 * min(distance, 1.0))


def main_face(faces: Sequence[Boxed], frame_size: tuple[int, int]) -> Boxed:
    """The largest, most central of ``faces`` (the one whose mood counts): results or tracks alike."""
    return max(faces, key=lambda face: main_face_score(face.box, frame_size))
