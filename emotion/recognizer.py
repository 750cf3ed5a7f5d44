"""EmotionRecognizer: from an image to faces with emotion probabilities.

It holds the parts (the face detector, the emotion network, the calibration in use) and the
stages that read a face with them: crop, classify, results. The path through them, find ->
crop -> classify -> results, is :class:`~emotion.pipeline.FaceReader`'s, the same for every frame
of a video (:class:`~emotion.pipeline.EmotionPipeline`) and for one image (:meth:`EmotionRecognizer.analyze`).
Logits become probabilities through the model's decision rule (:mod:`emotion.decision`),
personalised by a :class:`~emotion.calibration.Calibration` if any.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emotion.calibration import Calibration, CalibrationCapture, CalibrationError
from emotion.classes import EMOTIONS
from emotion.classifier import open_classifier
from emotion.decision import DecisionRule
from emotion.detection import Detection, FaceDetector, FaceFinder, create_detector
from emotion.pipeline import FaceReader
from emotion.preprocess import check_image, crop_face, eye_angle, resize_faces
from emotion.results import FaceResult


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

    def face_finder(self) -> FaceFinder:
        """A finder of faces frame after frame with this recognizer's detector (each reader has its own)."""
        return FaceFinder(self.detector)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a gray, BGR or BGRA frame, searched whole (no frame before it)."""
        check_image(frame)
        return self.detector.detect(frame)

    def crops(self, frame: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """Model-ready gray face crops (N, input_size, input_size), levelled by the eye landmarks when there are any.

        ``frame`` has passed ``check_image``. Each crop turns gray on its own: the frame as a whole
        is never converted.
        """
        size = self.input_size
        out = np.empty((len(detections), size, size), np.uint8)
        for i, d in enumerate(detections):
            out[i] = crop_face(frame, d.box, size,
                               angle=eye_angle(d.landmarks) if self.align and d.landmarks is not None else 0.0)
        return out

    def logits(self, face_crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """The network's raw outputs (N, 7) for face crops, in one batch.

        What :meth:`crops` gives goes in as it is; crops of any other size or colour layout are
        checked and resized first.
        """
        ready = (isinstance(face_crops, np.ndarray) and face_crops.dtype == np.uint8
                 and face_crops.shape[1:] == (self.input_size, self.input_size))
        return self.classifier.logits(face_crops if ready else resize_faces(face_crops, self.input_size))

    def classify(self, face_crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
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
        """All faces in one image with their emotions: a video frame's path, searched whole.

        For video, :class:`~emotion.pipeline.EmotionPipeline` follows the faces from frame to frame.
        """
        check_image(image)
        return FaceReader(self).read(image)

    def calibrate(self, images: Sequence[np.ndarray], photos: bool = False) -> Calibration:
        """A calibration from frames (or, with ``photos``, separate photos) of one person's relaxed, neutral face.

        Raises CalibrationError, with one line that says what to do, when the images do not
        show one steady, frontal, lit, resting face (see :mod:`emotion.calibration`). The result
        is not applied: set ``recognizer.calibration`` to use it, and ``save`` it to keep it.
        """
        if not self.can_calibrate:  # its result could never be used
            raise CalibrationError(self.cannot_calibrate_reason + ".")
        capture = CalibrationCapture(self.model_id, self.checkpoint_path.name)
        for i, image in enumerate(images):
            capture.add(image, self.analyze(image), i / 30, independent=photos)
        return capture.finish()
