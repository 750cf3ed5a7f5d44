"""The mood over time: runs of one smoothed mood, the marks set on them, and the share of each mood.

:class:`MoodHistory` is fed one (time, mood label) pair per analysed frame, by whoever reads
the frozen :class:`~emotion.pipeline.FrameAnalysis` snapshots (the window on its own thread,
``--headless`` after each frame), never by the pipeline: keeping it costs the analysis nothing.
Consecutive frames with the same mood merge into one :class:`MoodSegment`, so its memory grows
with the number of mood changes, not of frames, and what is older than ``span`` seconds is
dropped. The share of time in each mood covers everything ever fed, in seven numbers.

Pure logic: no Qt, no clock of its own. Times are seconds on any clock that does not go back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from emotion.classes import EMOTIONS

SPAN_S = 300.0  # what the window's timeline shows: the last five minutes
MAX_GAP_S = 2.0  # a mood holds until the next frame, unless that comes later than this (paused, a lost camera)
MAX_SEGMENTS = 4096  # a mood that flickers every frame for minutes on end still takes bounded memory


@dataclass(frozen=True)
class MoodSegment:
    """One mood, held from ``start`` to ``end`` without a break."""

    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Mark:
    """Something that happened at ``time`` (a playlist made from ``label``)."""

    time: float
    label: str


class MoodHistory:
    """The moods of the last ``span`` seconds as segments, marks on them, and each mood's share of all time seen.

    A frame's mood holds until the next frame, for at most ``max_gap`` seconds: a pause, a lost
    camera or a stalled source leaves a gap instead of stretching the last mood over it. A frame
    without a mood (no face) ends the segment before it.
    """

    def __init__(self, span: float = SPAN_S, max_gap: float = MAX_GAP_S, max_segments: int = MAX_SEGMENTS) -> None:
        if span < 0 or max_gap <= 0:
            raise ValueError("span must be >= 0 and max_gap > 0")
        self.span, self.max_gap = span, max_gap
        self._closed: deque[MoodSegment] = deque(maxlen=max_segments)
        self._open: MoodSegment | None = None  # the run the latest frame belongs to
        self._last: float | None = None  # time of the latest frame
        self._marks: deque[Mark] = deque(maxlen=max_segments)
        self._seconds = dict.fromkeys(EMOTIONS, 0.0)

    def add(self, time: float, label: str | None) -> None:
        """The mood shown at ``time`` (None: no mood). Times must not go back."""
        if self._last is not None and time < self._last:
            raise ValueError(f"time went back from {self._last} to {time}")
        current = self._open
        if current is not None:
            if time - current.end <= self.max_gap:  # the mood held until now
                self._seconds[current.label] += time - current.end
                current = MoodSegment(current.label, current.start, time)
            if label != current.label or current.end != time:
                self._close(current)
                current = None
        if current is None and label is not None:
            current = MoodSegment(label, time, time)
        self._open, self._last = current, time
        self._forget_before(time - self.span)

    def mark(self, time: float, label: str) -> None:
        """Something happened at ``time``: shown on the timeline while it is within ``span``."""
        self._marks.append(Mark(time, label))
        self._forget_before(max(time, self._last or time) - self.span)

    def segments(self, since: float | None = None) -> tuple[MoodSegment, ...]:
        """The runs of one mood, oldest first (those ending before ``since`` left out)."""
        runs = (*self._closed, self._open) if self._open is not None else tuple(self._closed)
        return runs if since is None else tuple(run for run in runs if run.end >= since)

    def marks(self, since: float | None = None) -> tuple[Mark, ...]:
        return tuple(mark for mark in self._marks if since is None or mark.time >= since)

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds spent in each mood, over everything fed so far (not only ``span``)."""
        return {label: seconds for label, seconds in self._seconds.items() if seconds > 0}

    def share(self) -> dict[str, float]:
        """Each mood's share of the time with a mood, over everything fed so far; {} before any."""
        total = sum(self._seconds.values())
        return {label: seconds / total for label, seconds in self.seconds.items()} if total > 0 else {}

    def _close(self, segment: MoodSegment) -> None:
        if segment.duration > 0:
            self._closed.append(segment)

    def _forget_before(self, oldest: float) -> None:
        while self._closed and self._closed[0].end < oldest:
            self._closed.popleft()
        while self._marks and self._marks[0].time < oldest:
            self._marks.popleft()
