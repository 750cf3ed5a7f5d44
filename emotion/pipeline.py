"""One frame in, a frozen snapshot of faces, tracks and mood out; and the latency figures of a run.

:class:`FaceReader` is the one path from a frame to its faces: find them (around the last ones,
or in the whole frame), crop them, classify the crops in one batch, make the results. The
pipeline reads each frame of a video with it, then follows the faces as tracks and smooths the
mood; it times finding (``detect_ms``), cropping and classifying (``classify_ms``) and the whole
frame (``total_ms``). :class:`FrameAnalysis` is made on the thread that runs the pipeline and
never changes afterwards, so the window (or any other thread) can keep and paint it while the
next frame is being analysed. The tracker's live objects stay inside.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import cv2
import numpy as np

from emotion.calibration import CalibrationCapture, CalibrationError, CalibrationStatus, calibrated_message
from emotion.classes import EMOTIONS
from emotion.preprocess import Box, check_image, to_gray
from emotion.results import FaceResult
from emotion.smoothing import FaceTracker, Mood, MoodTracker

if TYPE_CHECKING:  # for annotations only: the recognizer reads its one image with a FaceReader from here
    from emotion.recognizer import EmotionRecognizer

_LOADED = time.monotonic()


@dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: this frame's own prediction and its track's smoothed one."""

    face: FaceResult  # this frame's prediction
    track_id: int
    label: str  # smoothed over the track
    confidence: float
    probabilities: Mapping[str, float]  # smoothed, read-only

    @property
    def box(self) -> Box:
        return self.face.box

    def to_dict(self, reduction: float = 1.0) -> dict:
        return {**self.face.to_dict(reduction), "track": self.track_id,
                "smoothed": {"label": self.label, "confidence": round(self.confidence, 4)}}


@dataclass(frozen=True)
class FrameAnalysis:
    index: int
    timestamp: float
    frame: np.ndarray  # read-only
    faces: tuple[TrackedFace, ...]
    mood: Mood | None
    timings: Mapping[str, float]  # detect_ms, classify_ms and total_ms (see the module), read-only
    photo: str = ""  # the photo's file name when the frame is a photo
    reduction: float = 1.0  # original pixels per frame pixel: to_dict reports boxes in the original's coordinates
    calibrated: bool = False  # a personal calibration is in use
    calibration: CalibrationStatus | None = None  # the latest capture (C), until the next one

    def to_dict(self) -> dict:
        out = {
            "frame": self.index,
            "t": round(self.timestamp, 4),
            "faces": [face.to_dict(self.reduction) for face in self.faces],
            "mood": self.mood.to_dict(self.timestamp) if self.mood else None,
        }
        if self.photo:
            out["photo"] = self.photo
        return out


class SceneCutDetector:
    """Says when a video cuts to another scene, so tracks from before the cut end there.

    Compares 32x24 gray thumbnails of consecutive frames: a moving head or a camera's
    exposure drift changes them by a few gray levels on average, a cut by several tens. The
    thumbnail averages a grid of about 128 pixels across (every k-th pixel and row), not every
    pixel: graying and shrinking a whole 1920x1080 frame took 0.6 ms, the grid takes 0.02 ms.
    """

    def __init__(self, threshold: float = 40.0) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, frame: np.ndarray) -> bool:
        step = max(1, frame.shape[1] // 128)
        grid = to_gray(np.ascontiguousarray(frame[::step, ::step]), checked=True)
        thumb = cv2.resize(grid, (32, 24), interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._previous = self._previous, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > self.threshold

    def reset(self) -> None:
        self._previous = None


class FaceReader:
    """The one path from a frame to its faces: find -> crop -> classify -> results.

    :class:`EmotionPipeline` reads every frame of a video with one, which searches around the
    faces of the frame before (:class:`~emotion.detection.FaceFinder`); ``recognizer.analyze``
    reads one image with a new one, which searches it whole. Frames have passed ``check_image``:
    each way in checks its frame once.
    """

    def __init__(self, recognizer: EmotionRecognizer) -> None:
        self.recognizer = recognizer
        self.finder = recognizer.face_finder()

    def read(self, frame: np.ndarray, timestamp: float = 0.0, timings: dict[str, float] | None = None
             ) -> list[FaceResult]:
        """The faces in ``frame`` with their emotions; ``timings`` (if given) gets detect_ms and classify_ms."""
        t_find = time.perf_counter()
        detections = self.finder.find(frame, timestamp)
        t_classify = time.perf_counter()
        recognizer = self.recognizer
        faces = recognizer.results(detections, recognizer.logits(recognizer.crops(frame, detections)))
        if timings is not None:
            timings["detect_ms"] = (t_classify - t_find) * 1000
            timings["classify_ms"] = (time.perf_counter() - t_classify) * 1000
        return faces

    def reset(self) -> None:
        """The next frame has nothing to do with the last (a new photo, a scene cut): search it whole."""
        self.finder.reset()


class EmotionPipeline:
    """Find, classify, track and smooth, frame after frame.

    ``start_calibration`` captures the main face for a few seconds (the window's C, the API's
    /calibrate, ``moodtunes calibrate``); when the capture is good, the calibration is saved to
    ``save_to`` (if given) and used from the next frame on. Call it, like everything here, from
    the thread that runs the pipeline.
    """

    def __init__(self, recognizer: EmotionRecognizer, tracker: FaceTracker | None = None,
                 mood_tracker: MoodTracker | None = None, scene_cuts: SceneCutDetector | None = None) -> None:
        self.recognizer = recognizer
        self.tracker = tracker or FaceTracker()
        self.mood_tracker = mood_tracker or MoodTracker()
        self.scene_cuts = scene_cuts or SceneCutDetector()
        self.reader = FaceReader(recognizer)
        self._index = 0
        self._capture: CalibrationCapture | None = None
        self._save_calibration_to: Path | None = None
        self._calibration_status: CalibrationStatus | None = None

    def start_calibration(self, save_to: Path | None = None, seconds: float | None = None) -> None:
        """Capture the main face from the next frame on (see :mod:`emotion.calibration`).

        A model that cannot use a calibration fails at once, before the person holds still for nothing.
        """
        recognizer = self.recognizer
        number = self._calibration_status.number + 1 if self._calibration_status else 1
        if not recognizer.can_calibrate:
            self._capture = None
            self._calibration_status = CalibrationStatus(number, "failed", 1.0,
                                                         recognizer.cannot_calibrate_reason + ".")
            return
        options = {} if seconds is None else {"duration": seconds}
        self._capture = CalibrationCapture(recognizer.model_id, recognizer.checkpoint_path.name, **options)
        self._save_calibration_to = save_to
        self._calibration_status = CalibrationStatus(number, "capturing", 0.0, "Hold a relaxed, neutral face and "
                                                     "look at the camera...")

    def reset_calibration(self) -> None:
        """Stop using the calibration (the saved file, if any, is the caller's to delete)."""
        self._capture = None
        self.recognizer.calibration = None

    def process(self, frame: np.ndarray, timestamp: float, independent: bool = False,
                photo: str = "", reduction: float = 1.0) -> FrameAnalysis:
        """Analyse one frame. ``independent``: a photo of its own, with no history before it; ``reduction``:
        original pixels per pixel of ``frame`` (a huge photo decoded reduced), for the reported boxes."""
        t0 = time.perf_counter()
        check_image(frame)  # once per frame: every stage after this trusts it
        if independent:
            self.tracker.reset()
            self.mood_tracker.reset()
            self.scene_cuts.reset()
            self.reader.reset()
        elif self.scene_cuts.is_cut(frame):
            self.tracker.reset()
            self.reader.reset()
        timings: dict[str, float] = {}
        faces = self.reader.read(frame, timestamp, timings)
        if self._capture is not None:
            self._calibrate(frame, faces, timestamp, independent)
            if independent and self._calibration_status.state == "done":  # a still is read with it at once
                faces = self.reader.read(frame, timestamp, timings)
        tracks = self.tracker.update(faces, timestamp)
        mood = self.mood_tracker.update(tracks, timestamp, (frame.shape[1], frame.shape[0]))
        tracked = tuple(
            TrackedFace(face, track.id, track.label, track.confidence,
                        MappingProxyType({n: float(v) for n, v in zip(EMOTIONS, track.probabilities, strict=True)}))
            for face, track in zip(faces, tracks, strict=True)
        )
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        if frame.flags.writeable:
            frame = frame.copy()
            frame.flags.writeable = False
        analysis = FrameAnalysis(self._index, timestamp, frame, tracked, mood, MappingProxyType(timings), photo,
                                 reduction, self.recognizer.calibration is not None, self._calibration_status)
        self._index += 1
        return analysis

    def _calibrate(self, frame: np.ndarray, faces: list[FaceResult], timestamp: float, independent: bool) -> None:
        capture, number = self._capture, self._calibration_status.number
        capture.add(frame, faces, timestamp, independent)
        # A photo is judged alone and at once, as recognizer.calibrate(photos, photos=True) and `moodtunes
        # calibrate --source PHOTO` judge it: a still held for 3 s would only count the same face again.
        if not (independent or capture.done(timestamp)):
            left = capture.duration * (1 - capture.progress(timestamp))
            self._calibration_status = CalibrationStatus(number, "capturing", capture.progress(timestamp),
                                                         f"Hold a relaxed, neutral face... {math.ceil(left)} s")
            return
        self._capture = None
        try:
            calibration = capture.finish()
        except CalibrationError as exc:
            self._calibration_status = CalibrationStatus(number, "failed", 1.0, str(exc))
            return
        self.recognizer.calibration = calibration
        message = calibrated_message(calibration.frames, capture.photos)
        if self._save_calibration_to is not None:
            try:
                calibration.save(self._save_calibration_to)
            except OSError as exc:
                message += (f" It could not be saved in {self._save_calibration_to.parent} ({exc.strerror or exc}), so "
                            "it lasts until you quit.")
        self._calibration_status = CalibrationStatus(number, "done", 1.0, message, calibration)


@dataclass
class LatencyStats:
    """Per-stage p50/p95 (and totals) over a run of any length, in bounded memory.

    Keeps a uniform random sample of at most ``capacity`` values per stage (reservoir
    sampling, Vitter's algorithm R): exact for runs up to ``capacity`` frames, a close
    estimate beyond, and the same memory after a week as after a minute. Written here
    rather than taken from a quantile-sketch package: that would be a dependency for a
    dozen lines.
    """

    capacity: int = 20_000
    samples: dict[str, list[float]] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def add(self, timings: Mapping[str, float]) -> None:
        for stage, ms in timings.items():
            seen = self.counts.get(stage, 0) + 1
            self.counts[stage] = seen
            self.totals[stage] = self.totals.get(stage, 0.0) + ms
            reservoir = self.samples.setdefault(stage, [])
            if len(reservoir) < self.capacity:
                reservoir.append(ms)
            else:
                slot = self._rng.randrange(seen)
                if slot < self.capacity:
                    reservoir[slot] = ms

    def total(self, stage: str) -> float:
        return self.totals.get(stage, 0.0)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            stage.removesuffix("_ms"): {
                "p50": round(float(np.percentile(v, 50)), 3),
                "p95": round(float(np.percentile(v, 95)), 3),
            }
            for stage, v in self.samples.items() if v
        }


def seconds_since_launch() -> float:
    """How long this process has run, the interpreter's own start-up included.

    Linux: the process's start time from /proc; elsewhere: since this module was loaded.
    """
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in ticks since boot
        return float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _LOADED


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (None where the OS does not say).

    Linux: VmHWM, the high-water mark of this program's own address space. ru_maxrss would
    also count the parent's memory when this process was started by fork + exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)
