"""The DJ's requests carried out against Spotify, off the caller's thread: a worker and the session around it.

:class:`DJWorker` owns a thread, the Spotify client and what the session has played; it runs one
request at a time, in order, and hands back immutable :class:`~playlist.dj.DJAction` records. It
is where Spotify's faults are handled: a 429 is waited out as Spotify asks (no request goes out
before then), a network outage is said once, retried with back-off, and said again when it is
over; any other refusal is one line, said once however often it comes back.

:class:`DJSession` is what a front end holds: ``observe(t, mood)`` per frame (cheap: the decision
is the pure :class:`~playlist.dj.DJ`'s, the requests go to the worker), ``play_now``, ``like``,
``skip``, and ``wait(timeout)`` for the end of a file. No Qt here: the window, the API and
``--headless`` each wrap it their own way.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from emotion.errors import MoodtunesError
from playlist.builder import Track, build_playlist
from playlist.dj import DJ, ERROR, KEEP, LIKE, NOTE, PLAY, QUEUE, SKIP, DJAction, FollowSettings, Request
from playlist.make import PlaylistResult, make_playlist
from playlist.profiles import MoodProfile, load_profiles
from playlist.spotify import (
    NoDevice,
    Offline,
    PremiumRequired,
    RateLimited,
    SignInRequired,
    SpotifyAuth,
    SpotifyClient,
    SpotifyError,
    load_config,
)
from playlist.taste import TasteMemory

RESERVE_SIZE = 8  # tracks picked per search round for a followed mood: the first queued, the rest kept for top-ups
KEEP_AHEAD = 2  # fewer of the DJ's tracks than this still to come: queue more
DEFAULT_RATE_LIMIT_WAIT_S = 30.0  # a 429 that names no wait
OFFLINE_BACKOFF_S = (2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


_REASONS = ((SignInRequired, "sign_in"), (NoDevice, "no_device"), (PremiumRequired, "premium"),
            (RateLimited, "rate_limited"), (Offline, "offline"))


def _one_line(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return (f"The DJ could not save what you liked or skipped ({exc.strerror or exc}); check that the config "
                "folder is writable (MOODTUNES_CONFIG_DIR).")
    return str(exc)


@dataclass(frozen=True)
class NowPlaying:
    track: Track | None
    mood: str | None  # the mood the track was picked for
    device: str | None


class DJWorker:
    """Runs the DJ's requests on a thread of its own and reports what came of them.

    ``connect`` gives a signed-in SpotifyClient (called on the worker thread, once); ``make`` makes
    and starts a playlist (``playlist.make.make_playlist``'s signature). ``say`` hears each line for
    the user once.
    """

    def __init__(self, connect: Callable[[], SpotifyClient], taste: TasteMemory,
                 make: Callable[..., PlaylistResult] = make_playlist, say: Callable[[str], None] = lambda line: None,
                 again: str = "press P", profiles: dict[str, MoodProfile] | None = None) -> None:
        self._connect = connect
        self._make = make
        self.taste = taste
        self.say = say
        self.again = again
        self._profiles = profiles
        self._client: SpotifyClient | None = None
        self._jobs: deque[Request] = deque()
        self._done: list[tuple[Request, DJAction | None, bool]] = []
        self._busy = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Owned by the worker thread:
        self._session_tracks: list[Track] = []  # played or queued in this session: never picked again
        self._picked_for: dict[str, str] = {}  # track URI -> the mood it was picked for
        self._reserve: dict[str, list[Track]] = {}  # picked, not yet queued, per mood
        self._queued: dict[str, list[str]] = {}  # URIs queued per mood
        self._top_artists: list[str] | None = None
        self._blocked_until = 0.0  # monotonic time before which no request goes out (Retry-After)
        self._offline = False
        self._said: str | None = None
        self._now = NowPlaying(None, None, None)

    @classmethod
    def for_user(cls, again: str, say: Callable[[str], None],
                 make: Callable[..., PlaylistResult] = make_playlist) -> DJWorker:
        """The worker of the user's saved Spotify sign-in and taste memory; ``again`` says how to retry what
        needs a sign-in ("press P")."""
        return cls(lambda: signed_in_client(again), TasteMemory.of_user(), make=make, say=say, again=again)

    # --- the caller's side ---------------------------------------------------------------------------------
    def submit(self, request: Request) -> None:
        with self._cond:
            if request.kind == KEEP and any(job.kind == KEEP for job in self._jobs):
                return  # one pending look at the queue is enough
            self._jobs.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="moodtunes-dj", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def results(self) -> list[tuple[Request, DJAction | None, bool]]:
        """(request, action or None when nothing new is to be said, failed) for each request done since last asked."""
        with self._cond:
            done, self._done = self._done, []
        return done

    def wait(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every submitted request is done; True if they are."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 1.0) -> None:
        """Stop: pending requests are dropped; one in flight is abandoned after ``timeout`` s (the thread is a
        daemon, so quitting never waits for Spotify)."""
        self._stop.set()
        with self._cond:
            self._jobs.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def now_playing(self) -> NowPlaying:
        return self._now  # an immutable snapshot, replaced whole

    # --- the worker thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._jobs and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                request = self._jobs.popleft()
                self._busy = True
            action, failed = self._carry_out(request)
            with self._cond:
                self._busy = False
                if not self._stop.is_set():
                    self._done.append((request, action, failed))
                self._cond.notify_all()

    def _carry_out(self, request: Request) -> tuple[DJAction | None, bool]:
        backoff = iter(OFFLINE_BACKOFF_S)
        while True:
            if self._stop.wait(max(0.0, self._blocked_until - time.monotonic())):
                return None, True
            try:
                action = self._perform(request)
            except Offline as exc:
                if not self._offline:
                    self._offline = True
                    self.say(f"{exc} The DJ keeps trying and says when Spotify is back.")
                if self._stop.wait(next(backoff, OFFLINE_BACKOFF_S[-1])):
                    return None, True
                continue
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT_S
                self._blocked_until = time.monotonic() + wait
                return self._error(request, f"{exc} The DJ sends nothing to Spotify until then.", exc), True
            except (MoodtunesError, OSError) as exc:  # a refusal, a bad profiles.toml, an unwritable config folder
                return self._error(request, _one_line(exc), exc), True
            except Exception as exc:  # noqa: BLE001  (a bug must not leave the DJ's thread dead and its wait hanging)
                return self._error(request, f"The DJ hit an unexpected problem ({type(exc).__name__}: {exc}); it "
                                            "carries on.", exc), True
            if self._offline:
                self._offline = False
                self.say("Spotify is reachable again; the DJ carries on.")
            self._said = None  # a refusal that comes back after a success is news again
            return action, False

    def _error(self, request: Request, line: str, exc: Exception) -> DJAction | None:
        if line == self._said:  # said once, not once per attempt
            return None
        self._said = line
        self.say(line)
        reason = next((name for kind, name in _REASONS if isinstance(exc, kind)), "")
        return DJAction(request.t, ERROR, request.mood, detail=line, reason=reason)

    def _spotify(self) -> SpotifyClient:
        """The signed-in client (SignInRequired, in the DJ's words, without a sign-in)."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _perform(self, request: Request) -> DJAction | None:
        if request.kind == PLAY:
            return self._play(request)
        if request.kind == QUEUE:
            return self._queue(request, request.count, f"{request.mood} for {request.held_s:.0f} s")
        if request.kind == KEEP:
            return self._keep(request)
        if request.kind == NOTE:
            assert request.mood is not None
            self._remember(request.mood, list(request.tracks))
            self._now = NowPlaying(request.tracks[0] if request.tracks else None, request.mood,
                                   request.device or self._now.device)
            return None
        return self._like_or_skip(request)

    def _play(self, request: Request) -> DJAction:
        assert request.mood is not None
        self._spotify()  # signed in? (said in the DJ's words, before a playlist is made)
        result = self._make(request.mood, strategy=request.strategy, play=True, sign_in=False, again=self.again,
                            exclude=list(self._session_tracks))
        self._remember(request.mood, result.tracks)
        if result.play_error is not None:
            if isinstance(result.play_error, RateLimited):  # keeps its Retry-After
                raise result.play_error
            raise type(result.play_error)(f"{result.play_error} The playlist: {result.url}")
        self._now = NowPlaying(result.tracks[0] if result.tracks else None, request.mood, result.device)
        return DJAction(request.t, PLAY, request.mood, tuple(t.uri for t in result.tracks),
                        f"{request.mood}: playing {result.name} on {result.device}", result.device,
                        tuple(str(t) for t in result.tracks))

    def _queue(self, request: Request, count: int, why: str) -> DJAction | None:
        assert request.mood is not None
        tracks = self._pick(request.mood, request.strategy, count)
        if not tracks:
            raise SpotifyError(f"Spotify's search found no more {request.mood} tracks to queue.")
        for track in tracks:
            self._spotify().add_to_queue(track.uri)
            self._remember(request.mood, [track])
            self._queued.setdefault(request.mood, []).append(track.uri)
        how = "" if request.strategy == "match" else f", {request.strategy}"
        return DJAction(request.t, QUEUE, request.mood, tuple(t.uri for t in tracks),
                        f"{why}: queued {len(tracks)} tracks{how}", self._now.device, tuple(str(t) for t in tracks))

    def _keep(self, request: Request) -> DJAction | None:
        assert request.mood is not None
        playing, upcoming = self._spotify().upcoming()
        if playing is not None:
            self._now = NowPlaying(playing, self._picked_for.get(playing.uri), self._now.device)
        ours = set(self._queued.get(request.mood, []))
        ahead = sum(1 for t in upcoming if t.uri in ours)
        if ahead >= KEEP_AHEAD:
            return None
        return self._queue(request, request.count - ahead, f"still {request.mood}")

    def _like_or_skip(self, request: Request) -> DJAction:
        playback = self._spotify().playback()
        if playback is None or playback.track is None:
            raise SpotifyError(f"Nothing plays on your Spotify to {request.kind}.")
        track = playback.track
        mood = self._picked_for.get(track.uri, request.mood)
        if mood is None:
            raise SpotifyError(f"{track} was not picked by moodtunes for a mood; {request.kind} it in Spotify.")
        if request.kind == LIKE:
            self._spotify().save_to_library([track.uri])
            self.taste.like(mood, track)
            detail = f"liked {track} for {mood}"
        else:
            self._spotify().next_track()
            self.taste.skip(mood, track)
            self._reserve[mood] = [t for t in self._reserve.get(mood, []) if t.uri != track.uri]
            detail = f"skipped {track}: not for {mood} again"
        device = playback.device.name if playback.device else self._now.device
        self._now = NowPlaying(track, mood, device) if request.kind == LIKE else self._after_skip(track, device)
        return DJAction(request.t, LIKE if request.kind == LIKE else SKIP, mood, (track.uri,), detail,
                        self._now.device, (str(track),))

    def _after_skip(self, skipped: Track, device: str | None) -> NowPlaying:
        """What plays once ``skipped`` is gone, read again (the user pressed skip: one request more is theirs).
        Unknown rather than the skipped track when Spotify has not moved on yet, or cannot say."""
        try:
            playback = self._spotify().playback()
        except SpotifyError:  # the skip itself went through: not worth an error line
            playback = None
        track = playback.track if playback is not None else None
        if track is None or track.uri == skipped.uri:
            return NowPlaying(None, None, device)
        return NowPlaying(track, self._picked_for.get(track.uri), device)

    def _remember(self, mood: str, tracks: list[Track]) -> None:
        self._session_tracks.extend(tracks)
        for track in tracks:
            self._picked_for[track.uri] = mood

    def _pick(self, mood: str, strategy: str, count: int) -> list[Track]:
        """``count`` tracks for ``mood`` not played or queued in this session nor skipped for it: from what
        the last search round left over, else from a new round (liked artists first)."""
        skipped = self.taste.skipped(mood)  # one read of the memory's file for both uses below
        used = {t.uri for t in [*self._session_tracks, *skipped]}
        reserve = [t for t in self._reserve.get(mood, []) if t.uri not in used]
        if len(reserve) < count:
            if self._profiles is None:
                self._profiles = load_profiles()
            if self._top_artists is None:
                try:
                    self._top_artists = self._spotify().top_artists()
                except (RateLimited, Offline):  # not a reason to go without taste: to wait
                    raise
                except SpotifyError:  # taste is a bonus
                    self._top_artists = []
            artists = list(dict.fromkeys([*self.taste.liked_artists(mood), *self._top_artists]))
            exclude = [*self._session_tracks, *skipped, *reserve]
            reserve += build_playlist(self._profiles, mood, self._spotify(), strategy=strategy, size=RESERVE_SIZE,
                                      seed=random.randrange(2**31), taste_artists=artists, exclude=exclude)
        self._reserve[mood] = reserve[count:]
        return reserve[:count]


def signed_in_client(again: str = "press P") -> SpotifyClient:
    """The Spotify client of the saved sign-in (SignInRequired without one: the DJ never opens a browser)."""
    auth = SpotifyAuth(load_config(), again=again)
    if not auth.signed_in:
        raise SignInRequired("Not signed in to Spotify: sign in once with P in the window or "
                             "`moodtunes playlist --mood happy`, then the DJ can play.")
    return SpotifyClient(auth)


@dataclass(frozen=True)
class DJState:
    """What the panel, the overlay page and ``GET /dj`` show; replaced whole, so any thread may read it."""

    following: bool
    music_mood: str | None  # the mood the music is on
    holding: tuple[str | None, float]  # the mood holding now, and for how many seconds
    now_playing: NowPlaying
    recent: tuple[DJAction, ...]  # the last few actions, the latest last


class DJSession:
    """The DJ and its worker together: what a front end holds. Call it from one thread (the one with the frames);
    ``state`` may be read from any."""

    def __init__(self, worker: DJWorker, settings: FollowSettings | None = None, following: bool = False,
                 keep: int = 20) -> None:
        self.dj = DJ(settings, following)
        self.worker = worker
        self.history: deque[DJAction] = deque(maxlen=keep)  # the last few actions, for the panel
        self.state = self._snapshot()

    def _snapshot(self) -> DJState:
        return DJState(self.dj.following, self.dj.music_mood, self.dj.holding, self.worker.now_playing,
                       tuple(self.history))

    @property
    def following(self) -> bool:
        return self.dj.following

    @following.setter
    def following(self, on: bool) -> None:
        self.dj.following = on
        self.state = self._snapshot()

    def observe(self, t: float, mood: str | None) -> list[DJAction]:
        """One frame; returns the actions completed since the last call (usually none)."""
        request = self.dj.observe(t, mood)
        if request is not None:
            self.worker.submit(request)
        return self._collect()

    def play_now(self, t: float, mood: str) -> None:
        self.worker.submit(self.dj.play_now(t, mood))

    def played(self, t: float, mood: str, tracks: list[Track], device: str | None = None) -> None:
        """The front end made and started a playlist itself (P, which may sign in) on ``device``: the DJ counts it
        as its own."""
        self.worker.submit(self.dj.note_played(t, mood, tuple(tracks), device))

    def like(self, t: float) -> None:
        self.worker.submit(self.dj.like(t))

    def skip(self, t: float) -> None:
        self.worker.submit(self.dj.skip(t))

    def wait(self, timeout: float) -> list[DJAction]:
        """Wait (bounded) for pending requests, e.g. at the end of a file; the actions they gave."""
        self.worker.wait(timeout)
        return self._collect()

    def close(self) -> None:
        self.worker.close()

    def _collect(self) -> list[DJAction]:
        actions = []
        for request, action, failed in self.worker.results():
            self.dj.settle(request, failed)
            if action is not None:
                actions.append(action)
                self.history.append(action)
        self.state = self._snapshot()
        return actions
