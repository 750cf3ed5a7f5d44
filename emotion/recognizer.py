"""EmotionRecognizer: from a camera frame to faces with emotion probabilities."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from checkpoints import shipped
from emotion.checkpoint import load_checkpoint
from emotion.classes import EMOTIONS
from emotion.detection import Detection, FaceDetector, create_detector
from emotion.device import inference_dtype, resolve_device
from emotion.model import fuse_batchnorm
from emotion.preprocess import crop_face, eye_angle, normalize, resize_faces, to_gray

DEFAULT_CHECKPOINT = shipped("emotion_ferplus.pt")


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame. Immutable, so it can be handed to another thread as it is."""

    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    landmarks: np.ndarray | None  # (5, 2) eyes, nose, mouth corners, read-only; None from Haar
    probabilities: Mapping[str, float]  # one entry per class in EMOTIONS, read-only
    label: str
    confidence: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "probabilities", MappingProxyType(dict(self.probabilities)))
        if self.landmarks is not None:
            landmarks = np.array(self.landmarks, dtype=np.float32)
            landmarks.flags.writeable = False
            object.__setattr__(self, "landmarks", landmarks)

    def to_dict(self) -> dict:
        return {
            "box": list(self.box),
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }


class EmotionRecognizer:
    """Detect faces and classify their emotion.

    >>> recognizer = EmotionRecognizer()              # shipped model, best device, YuNet or Haar
    >>> for face in recognizer.analyze(frame_bgr):
    ...     print(face.box, face.label, face.confidence)
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str = "auto",
        detector: str | FaceDetector = "auto",
        face_model: str | Path | None = None,
        align: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.checkpoint_path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        ckpt = load_checkpoint(self.checkpoint_path)
        self.input_size, self.mean, self.std = ckpt.input_size, ckpt.mean, ckpt.std
        self.metadata = ckpt.metadata
        self.align = align
        self.dtype = dtype or inference_dtype(self.device)
        model = fuse_batchnorm(ckpt.model)
        # Channels-last layout picks oneDNN's fast convolutions on the CPU.
        self.model = model.to(self.device, self.dtype).to(memory_format=torch.channels_last).eval()
        self.detector = create_detector(detector, face_model) if isinstance(detector, str) else detector

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a gray, BGR or BGRA frame."""
        return self.detector.detect(frame)

    def crops(self, frame: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        """Model-ready gray face crops, levelled by the eye landmarks when there are any."""
        gray = to_gray(frame)
        return [
            crop_face(gray, d.box, self.input_size,
                      angle=eye_angle(d.landmarks) if self.align and d.landmarks is not None else 0.0)
            for d in detections
        ]

    @torch.inference_mode()
    def classify(self, face_crops: Sequence[np.ndarray]) -> np.ndarray:
        """Emotion probabilities (N, 7) for face crops of any size, in one batch."""
        if len(face_crops) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        faces = torch.from_numpy(resize_faces(face_crops, self.input_size))
        x = normalize(faces, self.mean, self.std).to(self.device, self.dtype)
        logits = self.model(x.contiguous(memory_format=torch.channels_last))
        return logits.float().softmax(1).cpu().numpy()

    def results(self, detections: Sequence[Detection], probabilities: np.ndarray) -> list[FaceResult]:
        out = []
        for d, p in zip(detections, probabilities, strict=True):
            best = int(p.argmax())
            out.append(FaceResult(
                box=d.box,
                landmarks=d.landmarks,
                probabilities={name: float(v) for name, v in zip(EMOTIONS, p, strict=True)},
                label=EMOTIONS[best],
                confidence=float(p[best]),
            ))
        return out

    def analyze(self, frame: np.ndarray, timings: dict[str, float] | None = None) -> list[FaceResult]:
        """All faces in ``frame`` with their emotions. ``timings`` receives ms per stage."""
        t0 = time.perf_counter()
        detections = self.detect(frame)
        t1 = time.perf_counter()
        probabilities = self.classify(self.crops(frame, detections))
        t2 = time.perf_counter()
        if timings is not None:
            timings["detect_ms"] = (t1 - t0) * 1000
            timings["classify_ms"] = (t2 - t1) * 1000
        return self.results(detections, probabilities)
