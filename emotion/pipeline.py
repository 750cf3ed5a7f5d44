"""One frame in, faces + tracks + current mood out; and the latency figures of a run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from emotion.recognizer import EmotionRecognizer, FaceResult
from emotion.smoothing import FaceTracker, Mood, MoodTracker, Track


@dataclass
class FrameAnalysis:
    index: int
    timestamp: float
    frame: np.ndarray
    faces: list[FaceResult]
    tracks: list[Track]  # one per face, same order
    mood: Mood | None
    timings: dict[str, float]  # ms per stage

    def to_dict(self) -> dict:
        return {
            "frame": self.index,
            "t": round(self.timestamp, 4),
            "faces": [
                {**face.to_dict(), "track": track.id,
                 "smoothed": {"label": track.label, "confidence": round(track.confidence, 4)}}
                for face, track in zip(self.faces, self.tracks, strict=True)
            ],
            "mood": self.mood.to_dict(self.timestamp) if self.mood else None,
        }


class EmotionPipeline:
    """Recognise, track and smooth, frame after frame."""

    def __init__(self, recognizer: EmotionRecognizer, tracker: FaceTracker | None = None,
                 mood_tracker: MoodTracker | None = None) -> None:
        self.recognizer = recognizer
        self.tracker = tracker or FaceTracker()
        self.mood_tracker = mood_tracker or MoodTracker()
        self._index = 0

    def process(self, frame: np.ndarray, timestamp: float) -> FrameAnalysis:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        faces = self.recognizer.analyze(frame, timings)
        tracks = self.tracker.update(faces, timestamp)
        mood = self.mood_tracker.update(tracks, timestamp, (frame.shape[1], frame.shape[0]))
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        analysis = FrameAnalysis(self._index, timestamp, frame, faces, tracks, mood, timings)
        self._index += 1
        return analysis


@dataclass
class LatencyStats:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, timings: dict[str, float]) -> None:
        for stage, ms in timings.items():
            self.samples.setdefault(stage, []).append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            stage.removesuffix("_ms"): {
                "p50": round(float(np.percentile(v, 50)), 3),
                "p95": round(float(np.percentile(v, 95)), 3),
            }
            for stage, v in self.samples.items() if v
        }


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)
