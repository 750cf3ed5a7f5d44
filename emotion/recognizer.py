"""EmotionRecognizer: from an image to faces with emotion probabilities.

The stages are public so that :class:`~emotion.pipeline.EmotionPipeline` can run and time
them one by one on video (find -> crop -> classify -> results); :meth:`EmotionRecognizer.analyze`
runs them all on a single image. Logits become probabilities through the model's decision rule
(:mod:`emotion.decision`), personalised by a :class:`~emotion.calibration.Calibration` if any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from emotion.classes import EMOTIONS
from emotion.classifier import open_classifier
from emotion.decision import DecisionRule
from emotion.detection import Detection, FaceDetector, create_detector
from emotion.preprocess import Box, check_image, crop_face, eye_angle, resize_faces

if TYPE_CHECKING:
    from emotion.calibration import Calibration


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame. Immutable, so it can be handed to another thread as it is."""

    box: Box  # x, y, w, h in frame pixels
    landmarks: np.ndarray | None  # (5, 2) eyes, nose, mouth corners, read-only; None from Haar
    probabilities: Mapping[str, float]  # one entry per class in EMOTIONS, read-only; decided (see above)
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

    def to_dict(self, scale: float = 1.0) -> dict:
        """JSON-ready; ``scale`` maps the box onto the original image when it was decoded reduced."""
        return {
            "box": [round(v * scale) for v in self.box],
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }


class EmotionRecognizer:
    """Detect faces and classify their emotion.

    >>> recognizer = EmotionRecognizer()              # shipped model, best backend, YuNet or Haar
    >>> for face in recognizer.analyze(frame_bgr):
    ...     print(face.box, face.label, face.confidence)

    ``backend``: auto (torch on a GPU, else ONNX Runtime, else OpenCV's DNN module), onnxruntime,
    opencv or torch; see
    :mod:`emotion.classifier`. ``calibration``: the person's neutral face (``recognizer.calibrate``);
    one measured with another model is ignored, and ``calibration_note`` says so. Creating one
    changes no process-wide setting: thread counts are the application's choice (see
    ``main.configure_process``).
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str = "auto",
        detector: str | FaceDetector = "auto",
        face_model: str | Path | None = None,
        align: bool = True,
        backend: str = "auto",
        calibration: Calibration | None = None,
    ) -> None:
        self.classifier = open_classifier(checkpoint, device, backend)
        self.input_size = self.classifier.input_size
        self.align = align
        self.detector = create_detector(detector, face_model) if isinstance(detector, str) else detector
        self.calibration_note = ""
        self._calibration: Calibration | None = None
        self.decision: DecisionRule = self.classifier.decision
        self.calibration = calibration

    @property
    def calibration(self) -> Calibration | None:
        """The person's neutral face in use, or None."""
        return self._calibration

    @calibration.setter
    def calibration(self, calibration: Calibration | None) -> None:
        self.calibration_note = ""
        if calibration is not None and calibration.model_id != self.model_id:
            self.calibration_note = (f"the calibration was measured with another model ({calibration.model_name}), so "
                                     "it is not used; calibrate again (key C, or `moodtunes calibrate`)")
            calibration = None
        elif calibration is not None and not self.can_calibrate:
            self.calibration_note = self.cannot_calibrate_reason
            calibration = None
        self._calibration = calibration
        self.decision = self.classifier.decision.calibrated(calibration.baseline if calibration else None)

    @property
    def can_calibrate(self) -> bool:
        """Whether the model stores the typical neutral face that a calibration is measured against."""
        return self.classifier.decision.typical_neutral is not None

    @property
    def cannot_calibrate_reason(self) -> str:
        return (f"This model ({self.checkpoint_path.name}) stores no typical neutral face, so it cannot use a "
                "calibration; use a model written by `python -m training.decide`")

    @property
    def model_id(self) -> str:
        """The SHA-256 of the model's checkpoint, shared by a .pt and its ONNX twin."""
        return self.classifier.model_id

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

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a gray, BGR or BGRA frame."""
        return self.detector.detect(frame)

    def crops(self, frame: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        """Model-ready gray face crops, levelled by the eye landmarks when there are any."""
        check_image(frame)  # each crop turns gray on its own: the frame as a whole is never converted
        return [
            crop_face(frame, d.box, self.input_size,
                      angle=eye_angle(d.landmarks) if self.align and d.landmarks is not None else 0.0)
            for d in detections
        ]

    def logits(self, face_crops: Sequence[np.ndarray]) -> np.ndarray:
        """The network's raw outputs (N, 7) for face crops of any size, in one batch."""
        return self.classifier.logits(resize_faces(face_crops, self.input_size))

    def classify(self, face_crops: Sequence[np.ndarray]) -> np.ndarray:
        """Emotion probabilities (N, 7) for face crops of any size, as the app decides (see the module)."""
        return self.decision.probabilities(self.logits(face_crops))

    def results(self, detections: Sequence[Detection], logits: np.ndarray) -> list[FaceResult]:
        """One FaceResult per detection, from the logits of its crop."""
        out = []
        for d, row, p in zip(detections, logits, self.decision.probabilities(logits), strict=True):
            best = int(p.argmax())
            out.append(FaceResult(
                box=d.box,
                landmarks=d.landmarks,
                probabilities={name: float(v) for name, v in zip(EMOTIONS, p, strict=True)},
                label=EMOTIONS[best],
                confidence=float(p[best]),
                logits=row,
            ))
        return out

    def analyze(self, image: np.ndarray) -> list[FaceResult]:
        """All faces in one image with their emotions (for video, EmotionPipeline follows them)."""
        detections = self.detect(image)
        return self.results(detections, self.logits(self.crops(image, detections)))

    def calibrate(self, images: Sequence[np.ndarray], photos: bool = False) -> Calibration:
        """A calibration from frames (or, with ``photos``, separate photos) of one person's relaxed, neutral face.

        Raises CalibrationError, with one line that says what to do, when the images do not
        show one steady, frontal, lit, resting face (see :mod:`emotion.calibration`). The result
        is not applied: set ``recognizer.calibration`` to use it, and ``save`` it to keep it.
        """
        from emotion.calibration import CalibrationCapture, CalibrationError

        if not self.can_calibrate:  # its result could never be used
            raise CalibrationError(self.cannot_calibrate_reason + ".")
        capture = CalibrationCapture(self.model_id, self.checkpoint_path.name)
        for i, image in enumerate(images):
            capture.add(image, self.analyze(image), i / 30, independent=photos)
        return capture.finish()
