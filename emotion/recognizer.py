"""EmotionRecognizer: from a camera frame to faces with emotion probabilities."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from emotion.classes import EMOTIONS
from emotion.classifier import open_classifier
from emotion.detection import Detection, FaceDetector, create_detector
from emotion.preprocess import crop_face, eye_angle, resize_faces, to_gray


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

    >>> recognizer = EmotionRecognizer()              # shipped model, best backend, YuNet or Haar
    >>> for face in recognizer.analyze(frame_bgr):
    ...     print(face.box, face.label, face.confidence)

    ``backend``: auto (torch on a GPU, OpenCV's DNN module on the CPU), opencv or torch; see
    :mod:`emotion.classifier`. Creating one changes no process-wide setting: thread counts are
    the application's choice (see ``main.configure_threads``).
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str = "auto",
        detector: str | FaceDetector = "auto",
        face_model: str | Path | None = None,
        align: bool = True,
        backend: str = "auto",
    ) -> None:
        self.classifier = open_classifier(checkpoint, device, backend)
        self.input_size = self.classifier.input_size
        self.align = align
        self.detector = create_detector(detector, face_model) if isinstance(detector, str) else detector

    @property
    def backend(self) -> str:
        return self.classifier.backend

    @property
    def device(self) -> str:
        return self.classifier.device

    @property
    def precision(self) -> str:
        return self.classifier.precision

    @property
    def checkpoint_path(self) -> Path:
        return self.classifier.path

    @property
    def metadata(self) -> dict:
        return self.classifier.metadata

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

    def classify(self, face_crops: Sequence[np.ndarray]) -> np.ndarray:
        """Emotion probabilities (N, 7) for face crops of any size, in one batch."""
        return self.classifier(resize_faces(face_crops, self.input_size))

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

    def analyze(self, frame: np.ndarray, timings: dict[str, float] | None = None,
                detections: Sequence[Detection] | None = None) -> list[FaceResult]:
        """All faces in ``frame`` with their emotions. ``timings`` receives ms per stage.

        ``detections``: faces already found in this frame (a :class:`~emotion.detection.FaceFinder`'s).
        """
        t0 = time.perf_counter()
        if detections is None:
            detections = self.detect(frame)
        t1 = time.perf_counter()
        probabilities = self.classify(self.crops(frame, detections))
        t2 = time.perf_counter()
        if timings is not None:
            timings.setdefault("detect_ms", (t1 - t0) * 1000)
            timings["classify_ms"] = (t2 - t1) * 1000
        return self.results(detections, probabilities)
