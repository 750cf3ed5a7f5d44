"""A personal neutral: the person's relaxed face, measured once, read as neutral from then on.

Some resting faces look stern or sad to a model trained on posed web photos, and the app then
says "angry" to someone who is just reading. Calibration asks the person to hold a relaxed face
for a few seconds (CAPTURE_SECONDS), averages the main face's raw logits over the frames where it is
steady, frontal and lit, and stores that baseline. From then on the model's logits are shifted
by (typical neutral - baseline) (:meth:`emotion.decision.DecisionRule.calibrated`), where the
typical neutral is what the model gives, on average, for FER+ validation faces that most
annotators called neutral (stored with the model).

A capture is refused, with one line that says what to do, when it cannot be a resting face of
one person: no face, two faces, a face that moves or turns, too dark, too few frames, an
expression that changes, or a broad smile or open-mouthed surprise. A resting face that reads
stern or sad is never refused: that is what calibration is for.

This module is pure logic and files: no camera, no Qt. The window, the API and
``moodtunes calibrate`` feed it frames through :class:`emotion.pipeline.EmotionPipeline`;
``recognizer.calibrate(images)`` feeds it photos or frames directly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from emotion.atomic import atomic_write
from emotion.capture import CAPTURE_SECONDS
from emotion.classes import EMOTIONS, NUM_CLASSES
from emotion.decision import softmax
from emotion.errors import MoodtunesError
from emotion.paths import config_dir
from emotion.preprocess import Box, to_gray
from emotion.results import FaceResult, main_face

CALIBRATION_FILENAME = "calibration.json"
FORMAT = "moodtunes-calibration"
MIN_FRAMES = 10  # a third of a second at 30 fps, a second at 10: enough to average out blinks
# Thresholds, relative to the face so that they hold at any distance from the camera:
MAX_STEP = 0.08  # the face's centre may move this share of its side from one frame to the next
MAX_SCALE_STEP = 0.12  # and its size change by this share (leaning in or back)
MAX_ROLL_DEGREES = 15.0  # head tilt, from the eye line
MAX_YAW = 0.25  # nose off the eyes' midpoint by this share of the eye distance (~20 degrees of turn)
MIN_BRIGHTNESS = 45  # mean gray level of the face box, 0..255
MAX_SHARE_WITH_OTHERS = 0.25  # frames with a second face
MAX_EXPRESSION_CHANGE = 0.35  # total-variation distance between the first and last third's mean probabilities
NOT_RESTING = {"happy": 0.5, "surprise": 0.5}  # mean probability above which the face is not at rest


class CalibrationError(MoodtunesError):
    """The capture is not one person's resting face, or a calibration file is unusable; one line says why."""


def saved_calibration_path() -> Path:
    """Where the app keeps the user's calibration."""
    return config_dir() / CALIBRATION_FILENAME


def delete_calibration(path: str | os.PathLike) -> bool:
    """Delete the calibration file at ``path``; True if there was one. A file that cannot be deleted
    (a read-only folder) is a one-line CalibrationError, never a traceback."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CalibrationError(f"The calibration {path} could not be deleted ({exc.strerror or exc}): delete it "
                               "yourself.") from exc
    return True


def calibrated_message(count: int, photos: bool) -> str:
    """What every way of calibrating says when it worked (the window, the API, ``moodtunes calibrate``)."""
    what = "photo" if photos else "frame"
    return f"Calibrated on {count} {what}{'' if count == 1 else 's'} of your neutral face."


@dataclass(frozen=True)
class Calibration:
    """The mean raw logits of one person's resting face, for the model that measured them."""

    baseline: tuple[float, ...]
    model_id: str  # SHA-256 of the model's checkpoint (a .pt and its ONNX twin share it)
    model_name: str  # for messages
    frames: int  # how many frames were averaged
    created: str  # ISO 8601, UTC

    def save(self, path: str | os.PathLike) -> None:
        """Write it atomically: a failed write never replaces a good calibration."""
        atomic_write(path, json.dumps({"format": FORMAT, **asdict(self)}, indent=1).encode("utf-8"), mode=0o600)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        """Read a calibration file; a missing, damaged or foreign one is a one-line CalibrationError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"No calibration at {path}; make one with `moodtunes calibrate` "
                                   "(or key C in the window).") from None
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"Cannot read the calibration {path} ({exc}); calibrate again "
                                   "(`moodtunes calibrate`, or key C).") from exc
        try:
            if data.get("format") != FORMAT:
                raise ValueError("not a moodtunes calibration")
            baseline = tuple(float(v) for v in data["baseline"])
            if len(baseline) != NUM_CLASSES or not all(math.isfinite(v) for v in baseline):
                raise ValueError(f"its baseline is not {NUM_CLASSES} numbers")
            return cls(baseline, str(data["model_id"]), str(data["model_name"]), int(data["frames"]),
                       str(data["created"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{path} is not a usable calibration ({exc}); calibrate again "
                                   "(`moodtunes calibrate`, or key C).") from exc


@dataclass(frozen=True)
class CalibrationStatus:
    """Where a capture stands, as the window and the API show it. ``number`` counts captures."""

    number: int
    state: str  # "capturing", "done" or "failed"
    progress: float  # 0..1 of the capture time
    message: str  # what to tell the person now
    calibration: Calibration | None = None  # when done


class CalibrationCapture:
    """Collects the main face of each frame for a calibration, then judges the whole capture.

    Feed it every frame (:meth:`add`) until :meth:`done`, then :meth:`finish`. Frames of a
    video need ``min_frames`` usable ones; separate photos (``independent``) one each.
    """

    def __init__(self, model_id: str, model_name: str, duration: float = CAPTURE_SECONDS,
                 min_frames: int = MIN_FRAMES) -> None:
        self.model_id, self.model_name = model_id, model_name
        self.duration = duration
        self.min_frames = min_frames
        self.photos = True  # until a frame of a video arrives
        self.started: float | None = None
        self.frames = 0
        self._with_face = self._with_others = self._dark = self._moving = self._turned = 0
        self._usable: list[np.ndarray] = []  # raw logits of the frames that count
        self._previous: Box | None = None

    def progress(self, now: float) -> float:
        return 0.0 if self.started is None else min(1.0, (now - self.started) / self.duration)

    def done(self, now: float) -> bool:
        return self.progress(now) >= 1.0

    def add(self, image: np.ndarray, faces: Sequence[FaceResult], timestamp: float, independent: bool = False) -> None:
        """One frame (or photo) and the faces found in it."""
        if self.started is None:
            self.started = timestamp
        self.frames += 1
        self.photos = self.photos and independent
        if not faces:
            self._previous = None
            return
        self._with_face += 1
        self._with_others += len(faces) > 1
        face = main_face(faces, (image.shape[1], image.shape[0]))
        steady = independent or self._previous is None or _steady(self._previous, face.box)
        self._previous = face.box
        if _brightness(image, face.box) < MIN_BRIGHTNESS:
            self._dark += 1
        elif not _frontal(face.landmarks):
            self._turned += 1
        elif not steady:
            self._moving += 1
        elif face.logits is not None:
            self._usable.append(np.asarray(face.logits, dtype=np.float64))

    def finish(self) -> Calibration:
        """The calibration, or a CalibrationError that says what to do differently."""
        again = "and try again"
        if not self._with_face:
            raise CalibrationError(f"No face found: sit in front of the camera, face it {again}.")
        if self._with_others > MAX_SHARE_WITH_OTHERS * self._with_face:
            raise CalibrationError(f"More than one face in view: calibrate alone in front of the camera {again}.")
        if self._dark > self._with_face / 2:
            raise CalibrationError(f"Too dark to see your face: turn on a light or face a window {again}.")
        needed = 1 if self.photos else self.min_frames
        if len(self._usable) < needed:
            if self.frames < needed:
                raise CalibrationError(f"Too few frames ({self.frames}, at least {needed} needed): hold "
                                       f"still for the whole {self.duration:.0f} seconds {again}.")
            why = "turned away" if self._turned >= self._moving else "moved"
            raise CalibrationError(f"Your face {why} during the capture: look straight at the camera and hold "
                                   f"still for {self.duration:.0f} seconds {again}.")
        logits = np.stack(self._usable)
        probabilities = softmax(logits)
        third = max(1, len(logits) // 3)
        change = 0.5 * np.abs(probabilities[:third].mean(0) - probabilities[-third:].mean(0)).sum()
        if change > MAX_EXPRESSION_CHANGE:
            raise CalibrationError(f"Your expression changed during the capture: keep one relaxed face for the "
                                   f"whole {self.duration:.0f} seconds {again}.")
        mean = probabilities.mean(0)
        for name, limit in NOT_RESTING.items():
            if mean[EMOTIONS.index(name)] > limit:
                what = "a smile" if name == "happy" else "surprise"
                raise CalibrationError(f"That looks like {what}, not a resting face: relax your face, mouth closed, "
                                       f"{again}.")
        return Calibration(
            baseline=tuple(float(v) for v in logits.mean(0)),
            model_id=self.model_id,
            model_name=self.model_name,
            frames=len(logits),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def _steady(previous: Box, box: Box) -> bool:
    side = max(previous[2], previous[3], 1)
    step = math.hypot(box[0] + box[2] / 2 - previous[0] - previous[2] / 2,
                      box[1] + box[3] / 2 - previous[1] - previous[3] / 2)
    return step <= MAX_STEP * side and abs(max(box[2], box[3]) / side - 1) <= MAX_SCALE_STEP


def _frontal(landmarks: np.ndarray | None) -> bool:
    """Level eyes and the nose between them (YuNet's landmarks); Haar finds only frontal faces anyway."""
    if landmarks is None:
        return True
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    dx, dy = left_eye - right_eye
    eye_distance = math.hypot(dx, dy)
    if eye_distance < 1:
        return False
    roll = abs(math.degrees(math.atan2(dy, dx)))
    yaw = abs(nose[0] - (right_eye[0] + left_eye[0]) / 2) / eye_distance
    return roll <= MAX_ROLL_DEGREES and yaw <= MAX_YAW


def _brightness(image: np.ndarray, box: Box) -> float:
    x, y, w, h = box
    region = image[max(0, y) : y + h, max(0, x) : x + w]
    return float(to_gray(region, checked=True).mean()) if region.size else 0.0  # a part of a checked frame
