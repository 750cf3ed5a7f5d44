"""One frame in, a frozen snapshot of faces, tracks and mood out; and the latency figures of a run.

:class:`FrameAnalysis` is made on the thread that runs the pipeline and never changes
afterwards, so the window (or any other thread) can keep and paint it while the next frame is
being analysed. The tracker's live objects stay inside the pipeline.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np

from emotion.classes import EMOTIONS
from emotion.detection import FaceFinder
from emotion.preprocess import Box, to_gray
from emotion.recognizer import EmotionRecognizer, FaceResult
from emotion.smoothing import FaceTracker, Mood, MoodTracker

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

    def to_dict(self) -> dict:
        return {**self.face.to_dict(), "track": self.track_id,
                "smoothed": {"label": self.label, "confidence": round(self.confidence, 4)}}


@dataclass(frozen=True)
class FrameAnalysis:
    index: int
    timestamp: float
    frame: np.ndarray  # read-only
    faces: tuple[TrackedFace, ...]
    mood: Mood | None
    timings: Mapping[str, float]  # ms per stage, read-only
    photo: str = ""  # the photo's file name when the frame is a photo

    def to_dict(self) -> dict:
        out = {
            "frame": self.index,
            "t": round(self.timestamp, 4),
            "faces": [face.to_dict() for face in self.faces],
            "mood": self.mood.to_dict(self.timestamp) if self.mood else None,
        }
        if self.photo:
            out["photo"] = self.photo
        return out


class SceneCutDetector:
    """Says when a video cuts to another scene, so tracks from before the cut end there.

    Compares 32x24 gray thumbnails of consecutive frames: a moving head or a camera's
    exposure drift changes them by a few gray levels on average, a cut by several tens.
    """

    def __init__(self, threshold: float = 40.0) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, frame: np.ndarray) -> bool:
        thumb = cv2.resize(to_gray(frame), (32, 24), interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._previous = self._previous, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > self.threshold

    def reset(self) -> None:
        self._previous = None


class EmotionPipeline:
    """Recognise, track and smooth, frame after frame."""

    def __init__(self, recognizer: EmotionRecognizer, tracker: FaceTracker | None = None,
                 mood_tracker: MoodTracker | None = None, scene_cuts: SceneCutDetector | None = None) -> None:
        self.recognizer = recognizer
        self.tracker = tracker or FaceTracker()
        self.mood_tracker = mood_tracker or MoodTracker()
        self.scene_cuts = scene_cuts or SceneCutDetector()
        self.finder = FaceFinder(recognizer.detector)
        self._index = 0

    def process(self, frame: np.ndarray, timestamp: float, independent: bool = False,
                photo: str = "") -> FrameAnalysis:
        """Analyse one frame. ``independent``: a photo of its own, with no history before it."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if independent:
            self.tracker.reset()
            self.mood_tracker.reset()
            self.scene_cuts.reset()
            self.finder.reset()
        elif self.scene_cuts.is_cut(frame):
            self.tracker.reset()
            self.finder.reset()
        t_detect = time.perf_counter()
        detections = self.finder.find(frame, timestamp)
        timings["detect_ms"] = (time.perf_counter() - t_detect) * 1000
        faces = self.recognizer.analyze(frame, timings, detections)
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
        analysis = FrameAnalysis(self._index, timestamp, frame, tracked, mood, MappingProxyType(timings), photo)
        self._index += 1
        return analysis


@dataclass
class LatencyStats:
    """Per-stage p50/p95 and mean over a run of any length, in bounded memory.

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
