"""The DJ's decisions: when the music starts, when it follows a new mood, when to top up the queue.

Pure logic on the stream's own clock: fed (stream seconds, smoothed mood of the main face or None)
for every frame, :meth:`DJ.observe` answers at once with a :class:`Request` (what to ask Spotify)
or None. It never waits for Spotify: it assumes a request succeeds, so a video file gives the
same decisions however fast it is read, and hears of a failure later through :meth:`DJ.settle`.
A worker (``playlist.dj_worker``) carries the requests out and reports :class:`DJAction` records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playlist.builder import Track

PLAY, QUEUE, KEEP, LIKE, SKIP, ERROR = "play", "queue", "keep", "like", "skip", "error"
NOTE = "note"  # a playlist the front end made and started itself (P in the window): no request, just remembered


@dataclass(frozen=True)
class FollowSettings:
    hold_s: float = 20.0  # a new mood must hold this long before the music follows it
    gap_s: float = 120.0  # at least this long between two changes of the music
    strategy: str = "match"  # or "lift": the queued tracks start at the mood and lift it
    batch: int = 3  # tracks queued when the music follows a new mood
    keep_every_s: float = 30.0  # while a followed mood holds, look at the queue at most this often
    retry_s: float = 30.0  # after a failed play or queue, wait this long before asking again
    # Frames further apart than this (a pause, a closed lid, a stalled camera) count as this far apart:
    # time without frames is not time the mood held.
    max_frame_gap_s: float = 2.0


@dataclass(frozen=True)
class Request:
    """What the DJ asks of Spotify at stream time ``t``."""

    t: float
    kind: str  # PLAY | QUEUE | KEEP | LIKE | SKIP | NOTE
    mood: str | None
    held_s: float = 0.0  # how long the mood had held when the DJ decided
    strategy: str = "match"
    count: int = 0  # tracks to queue
    tracks: tuple[Track, ...] = ()  # NOTE: the tracks of the playlist that started
    device: str | None = None  # NOTE: the device it started on


@dataclass(frozen=True)
class DJAction:
    """What the DJ did (or why it could not): for the panel, ``GET /dj`` and ``--headless`` JSON lines."""

    t: float  # stream seconds of the decision
    action: str  # PLAY | QUEUE | LIKE | SKIP | ERROR
    mood: str | None
    tracks: tuple[str, ...] = ()  # Spotify URIs
    detail: str = ""  # one line for a person: "sad for 20 s: queued 3 tracks, lift", or the error
    device: str | None = None
    names: tuple[str, ...] = field(default=(), compare=False)  # "Artist - Title" of each track
    # For an ERROR, what a front end can do about it: "sign_in" (sign in again, e.g. for the DJ's new
    # permission), "no_device", "premium", "rate_limited", "offline", or "" (nothing but show the line).
    reason: str = ""

    def as_json(self) -> dict:
        fields = {"t": round(self.t, 3), "action": self.action, "mood": self.mood, "tracks": list(self.tracks),
                  "detail": self.detail}
        return {"dj": fields | ({"reason": self.reason} if self.reason else {})}


class DJ:
    """Decides, frame by frame, what the music should do; owned by the thread that feeds it frames."""

    def __init__(self, settings: FollowSettings | None = None, following: bool = True) -> None:
        self.settings = settings or FollowSettings()
        self.following = following
        self.music_mood: str | None = None  # the mood the music is on now (None: the DJ has not started it)
        self.context_mood: str | None = None  # the mood of the playlist that plays (its tracks keep that mood)
        self._changed_at = -math.inf  # stream time the music last changed
        self._checked_at = -math.inf
        self._not_before = -math.inf  # no play or queue before this (after a failure)
        self._mood: str | None = None  # the mood now holding, and for how long and over how many frames
        self._held = 0.0
        self._frames = 0
        self._seen_at: float | None = None  # the last frame with a face
        self._last_t = 0.0
        self._undo: tuple[float, str | None, str | None, float] | None = None  # before the last play/queue

    @property
    def holding(self) -> tuple[str | None, float]:
        """(the mood holding now, for how many seconds)."""
        return self._mood, self._held

    def observe(self, t: float, mood: str | None) -> Request | None:
        """One frame: at stream time ``t`` the main face's smoothed mood is ``mood`` (None: no face)."""
        self._last_t = t
        if mood is None:  # no face changes nothing: the mood neither breaks nor holds
            return None
        gap = 0.0 if self._seen_at is None else min(max(t - self._seen_at, 0.0), self.settings.max_frame_gap_s)
        self._seen_at = t
        if mood == self._mood:
            self._held += gap
            self._frames += 1
        else:
            self._mood, self._held, self._frames = mood, 0.0, 1
        return self._decide(t, mood) if self.following else None

    def _decide(self, t: float, mood: str) -> Request | None:
        s = self.settings
        held = self._frames >= 2 and self._held >= s.hold_s  # never one frame, whatever hold_s says
        if self.music_mood is None:
            return self._change(t, PLAY, mood) if held and t >= self._not_before else None
        if mood != self.music_mood:
            if held and t - self._changed_at >= s.gap_s and t >= self._not_before:
                return self._change(t, QUEUE, mood)
            return None
        # The followed mood holds on queued tracks (the playlist that plays is for another mood): top them up.
        if mood != self.context_mood and t - self._checked_at >= s.keep_every_s:
            self._checked_at = t
            return Request(t, KEEP, mood, self._held, s.strategy, s.batch)
        return None

    def _change(self, t: float, kind: str, mood: str) -> Request:
        self._undo = (t, self.music_mood, self.context_mood, self._changed_at)
        self.music_mood = mood
        if kind == PLAY:
            self.context_mood = mood
        self._changed_at = self._checked_at = t
        return Request(t, kind, mood, self._held, self.settings.strategy, self.settings.batch)

    def play_now(self, t: float, mood: str) -> Request:
        """The user asked for music for ``mood`` (P): a playlist that starts playing, following or not."""
        return self._change(t, PLAY, mood)

    def note_played(self, t: float, mood: str, tracks: tuple[Track, ...], device: str | None = None) -> Request:
        """A playlist for ``mood`` started without the DJ (P in the window): the music changed all the same."""
        self._change(t, PLAY, mood)
        return Request(t, NOTE, mood, tracks=tracks, device=device)

    def like(self, t: float) -> Request:
        return Request(t, LIKE, self.music_mood)

    def skip(self, t: float) -> Request:
        return Request(t, SKIP, self.music_mood)

    def settle(self, request: Request, failed: bool) -> None:
        """The worker's outcome of ``request``; a failed play or queue leaves the music where it was."""
        if not failed or request.kind not in (PLAY, QUEUE):
            return
        if self._undo is not None and self._undo[0] == request.t:
            _, self.music_mood, self.context_mood, self._changed_at = self._undo
            self._undo = None
        # Ask again when the mood still holds, but not at once: the same refusal would come back.
        self._not_before = max(self._last_t, request.t) + self.settings.retry_s
