"""Steady emotions from noisy per-frame predictions.

Faces are followed across frames by box overlap (IoU), each track's probabilities pass
through an exponential filter whose weight depends on elapsed time, not frame count (so
10 fps and 60 fps look the same), and :class:`MoodTracker` turns the main face's track into
the "current mood": the dominant emotion over the last few seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from emotion.classes import EMOTIONS
from emotion.detection import iou
from emotion.preprocess import Box
from emotion.results import FaceResult, main_face


class ExponentialSmoother:
    """x_t = x_prev + alpha * (value - x_prev), alpha = 1 - exp(-dt / tau).

    After ``tau`` seconds a step change is 63% through, after 3 tau 95%, whatever the
    frame rate.
    """

    def __init__(self, tau: float) -> None:
        if tau <= 0:
            raise ValueError("tau must be positive")
        self.tau = tau
        self.value: np.ndarray | None = None
        self.time: float | None = None

    def update(self, value: np.ndarray, t: float) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.value is None or self.time is None:
            self.value = value.copy()
        else:
            dt = max(0.0, t - self.time)
            alpha = 1.0 - math.exp(-dt / self.tau)
            self.value = self.value + alpha * (value - self.value)
        self.time = t
        return self.value


@dataclass
class Track:
    id: int
    box: Box
    smoother: ExponentialSmoother
    last_seen: float
    face: FaceResult  # the latest raw result

    @property
    def probabilities(self) -> np.ndarray:
        return self.smoother.value

    @property
    def label(self) -> str:
        return EMOTIONS[int(self.probabilities.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


class FaceTracker:
    """Match faces to tracks by IoU and smooth each track's probabilities.

    A track survives ``max_missing`` seconds without a match (a blink of the detector), so
    one missed frame does not reset the face's history.
    """

    def __init__(self, tau: float = 0.4, iou_threshold: float = 0.3, max_missing: float = 1.0) -> None:
        self.tau = tau
        self.iou_threshold = iou_threshold
        self.max_missing = max_missing
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every face (a new photo, a scene cut). Ids keep counting: none is ever handed out twice."""
        self.tracks = []

    def update(self, faces: Sequence[FaceResult], t: float) -> list[Track]:
        """Tracks of the faces seen in this frame, in the order of ``faces``."""
        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= self.max_missing]
        pairs = sorted(
            ((iou(tr.box, f.box), ti, fi) for ti, tr in enumerate(self.tracks) for fi, f in enumerate(faces)),
            reverse=True,
        )
        assigned: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for overlap, ti, fi in pairs:  # greedy: best overlaps first
            if overlap < self.iou_threshold:
                break
            if ti in used_tracks or fi in assigned:
                continue
            used_tracks.add(ti)
            assigned[fi] = self.tracks[ti]
        result = []
        for fi, face in enumerate(faces):
            probs = np.array([face.probabilities[name] for name in EMOTIONS])
            track = assigned.get(fi)
            if track is None:
                track = Track(self._next_id, face.box, ExponentialSmoother(self.tau), t, face)
                self._next_id += 1
                self.tracks.append(track)
            track.box, track.last_seen, track.face = face.box, t, face
            track.smoother.update(probs, t)
            result.append(track)
        return result


@dataclass(frozen=True)
class Mood:
    label: str
    confidence: float  # smoothed probability of ``label``
    probabilities: Mapping[str, float]  # read-only
    since: float  # time at which this label became the mood
    track_id: int

    def held_for(self, now: float) -> float:
        return max(0.0, now - self.since)

    def to_dict(self, now: float) -> dict:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "held_s": round(self.held_for(now), 2),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }


@dataclass
class MoodTracker:
    """The current mood: the main face's dominant emotion over the last ``window`` seconds.

    The main face is the largest, most central one. Its smoothed probabilities are averaged
    again with time constant ``window`` / 2, and the mood only switches when a new emotion
    leads the current one by ``switch_margin``, so near-ties do not flicker. With no face for
    ``window`` seconds the mood is cleared.
    """

    window: float = 3.0
    switch_margin: float = 0.05
    _smoother: ExponentialSmoother | None = field(default=None, init=False)
    _mood: Mood | None = field(default=None, init=False)
    _last_face: float | None = field(default=None, init=False)

    def update(self, tracks: Sequence[Track], t: float, frame_size: tuple[int, int]) -> Mood | None:
        """Feed this frame's tracks; ``frame_size`` is (width, height)."""
        if not tracks:
            if self._last_face is not None and t - self._last_face > self.window:
                self.reset()
            return self._mood
        main = main_face(tracks, frame_size)
        if self._smoother is None:
            self._smoother = ExponentialSmoother(self.window / 2)
        probs = self._smoother.update(main.probabilities, t)
        self._last_face = t
        leader = int(probs.argmax())
        label = EMOTIONS[leader]
        current = self._mood
        if (current is not None and label != current.label
                and probs[leader] - probs[EMOTIONS.index(current.label)] < self.switch_margin):
            label = current.label
        since = current.since if current is not None and current.label == label else t
        index = EMOTIONS.index(label)
        self._mood = Mood(
            label=label,
            confidence=float(probs[index]),
            probabilities=MappingProxyType({name: float(v) for name, v in zip(EMOTIONS, probs, strict=True)}),
            since=since,
            track_id=main.id,
        )
        return self._mood

    def reset(self) -> None:
        self._smoother, self._mood, self._last_face = None, None, None

