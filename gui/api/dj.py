"""The server's DJ: one :class:`~playlist.dj_worker.DJSession`, fed by the live source's frames and driven by
the DJ endpoints and ``POST /playlist``.

The session is used from two sides: the analysis thread hands it every frame, and the endpoints (on the
thread pool) switch following, like, skip and report playlists they started. A lock takes them in turn.
Every call under it is quick (the DJ's pure decisions, and handing requests to the DJ's own worker
thread, which alone talks to Spotify), so a frame never waits for Spotify.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gui.api.settings import ServeSettings
from playlist.builder import Track
from playlist.dj import ERROR, DJAction
from playlist.dj_worker import DJSession, DJState, DJWorker
from playlist.make import PlaylistResult

# How a user of the API retries what needs a sign-in or a device: the API never opens a browser, the
# playlist command does (and it plays, so it also answers "open Spotify ... and ...").
SIGN_IN = "run `moodtunes playlist --mood happy` once"


class ServerDJ:
    """The DJ session of ``moodtunes serve``, on the live source's clock."""

    def __init__(self, session: DJSession, has_source: bool) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._has_source = has_source
        self._started = time.monotonic()
        self._frame: tuple[float, float] | None = None  # (stream seconds, wall-clock time) of the newest frame

    @classmethod
    def create(cls, settings: ServeSettings, make: Callable[..., PlaylistResult], has_source: bool,
               say: Callable[[str], None]) -> ServerDJ:
        """The DJ as ``settings`` say (following from the start or not, its timings); ``make`` makes and starts
        its playlists; ``say`` hears each line for the user once."""
        worker = DJWorker.for_user(SIGN_IN, say, make=make)
        return cls(DJSession(worker, settings.follow_settings, following=settings.follow), has_source)

    # --- the analysis thread -------------------------------------------------------------------------------
    def observe(self, t: float, mood: str | None) -> None:
        """One analysed frame: at stream time ``t`` the main face's smoothed mood is ``mood`` (None: no face)."""
        with self._lock:
            self._frame = (t, time.time())
            self.session.observe(t, mood)

    # --- the endpoints ---------------------------------------------------------------------------------------
    def now(self) -> float:
        """Stream seconds now: the newest frame's time (0 before the first); without a live source, the server's
        uptime."""
        frame = self._frame
        if frame is not None:
            return frame[0]
        return 0.0 if self._has_source else time.monotonic() - self._started

    def wall_time(self, t: float) -> float:
        """Stream time ``t`` on this computer's clock (seconds since the epoch)."""
        frame = self._frame
        return time.time() - (self.now() - t) if frame is None else frame[1] - (frame[0] - t)

    def state(self) -> DJState:
        """The session's snapshot, with what the DJ's worker finished meanwhile (frames may have stopped)."""
        with self._lock:
            self.session.wait(0)  # collects without waiting
            return self.session.state

    def set_following(self, on: bool) -> DJState:
        with self._lock:
            self.session.following = on
        return self.state()

    def played(self, mood: str, tracks: list[Track], device: str) -> None:
        """``POST /playlist`` started a playlist for ``mood`` on ``device``: the DJ counts it as its own."""
        with self._lock:
            self.session.played(self.now(), mood, tracks, device)

    def like(self) -> float:
        """Like the track that plays; the stream time that names the request (see :meth:`outcome`)."""
        with self._lock:
            t = self.now()
            self.session.like(t)
        return t

    def skip(self) -> float:
        with self._lock:
            t = self.now()
            self.session.skip(t)
        return t

    def outcome(self, action: str, t: float, timeout: float) -> DJAction | None:
        """What came of the ``action`` ("like" or "skip") asked at ``t``: its action, or the error that stopped
        it; None if the DJ's worker is still at it after ``timeout`` s. Blocks: call it off the event loop."""
        if not self.session.worker.wait(timeout):
            return None
        recent = self.state().recent
        mine = [a for a in recent if a.t == t and a.action in (action, ERROR)]
        if mine:
            return mine[-1]
        # Nothing new was said: the worker says a refusal once, and this was the same refusal again (a success
        # in between would have made it news), so it is the newest error.
        return next((a for a in reversed(recent) if a.action == ERROR), None)

    def close(self) -> None:
        self.session.close()
