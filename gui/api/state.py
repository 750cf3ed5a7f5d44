"""What the endpoints share: the live mood, the server's state, and the dependencies that hand them out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from emotion.calibration import Calibration, saved_calibration_path
from emotion.cli import warn
from emotion.live import EngineInfo, LiveAnalysis
from emotion.pipeline import FrameAnalysis
from emotion.recognizer import EmotionRecognizer
from emotion.sources import Frame
from gui.api.errors import ApiError
from gui.api.models import PLAYLIST_MARKS, MoodSnapshot, SmoothedMood, SourceState
from gui.api.settings import ServeSettings

if TYPE_CHECKING:
    from gui.api.dj import ServerDJ
    from playlist.make import PlaylistResult


class LiveMood:
    """What the live source shows now: the newest frozen analysis, the source's state and the
    times playlists were made. The analysis thread writes it, the event loop reads it."""

    def __init__(self, has_source: bool) -> None:
        self._lock = threading.Lock()
        self.analysis: FrameAnalysis | None = None
        self.info: EngineInfo | None = None
        self.state: SourceState = "starting" if has_source else "none"
        self.error = ""
        self.calibration_note = ""  # why the saved calibration is not used, until another is made or reset
        self.version = 0  # one more for each change that /events listeners should hear of
        self._playlists: deque[float] = deque(maxlen=PLAYLIST_MARKS)

    def ready(self, info: EngineInfo) -> None:
        with self._lock:
            self.info, self.state, self.calibration_note = info, "running", info.calibration_note

    def frame(self, item: Frame, analysis: FrameAnalysis, fps: float | None) -> None:
        with self._lock:
            self.analysis, self.version = analysis, self.version + 1

    def failed(self, message: str) -> None:
        with self._lock:
            self.state, self.error = "failed", message
            self.version += 1

    def finished(self, kind: str) -> None:
        with self._lock:
            self.state = "ended"
            self.version += 1

    def playlist_made(self) -> None:
        """Mark now (the newest frame's time) as a playlist's, for the overlay's mood strip."""
        with self._lock:
            if self.analysis is not None:
                self._playlists.append(round(self.analysis.timestamp, 3))
                self.version += 1

    def snapshot(self) -> MoodSnapshot:
        with self._lock:
            analysis, state, error, version = self.analysis, self.state, self.error, self.version
            playlists = list(self._playlists)
        mood = None
        if analysis is not None and analysis.mood is not None:
            mood = SmoothedMood(**analysis.mood.to_dict(analysis.timestamp))
        return MoodSnapshot(state=state, version=version, mood=mood, faces=len(analysis.faces) if analysis else 0,
                            t=round(analysis.timestamp, 3) if analysis else None, playlists=playlists,
                            **({"error": error} if error else {}))


@dataclass
class ServerState:
    """What the endpoints share: on ``app.state.server``, handed to them by :func:`server_state`."""

    settings: ServeSettings
    make_recognizer: Callable[[], EmotionRecognizer]
    make_playlist: Callable[..., PlaylistResult]
    live: LiveMood
    live_analysis: LiveAnalysis | None  # the live source's thread; None without a source
    dj: ServerDJ  # fed by the live source's frames; POST /playlist and the DJ endpoints drive it
    started: float = field(default_factory=time.monotonic)
    analyzer: EmotionRecognizer | None = None  # /analyze's own, see recognizer()
    analyze_lock: threading.Lock = field(default_factory=threading.Lock)  # one OpenCV network, one thread at a time
    making_playlist: asyncio.Lock = field(default_factory=asyncio.Lock)
    calibrating: asyncio.Lock = field(default_factory=asyncio.Lock)
    listeners: int = 0  # /events streams open now; changed on the event loop only
    stopping: bool = False  # the server is shutting down: /events streams end, other requests are answered
    told: set[str] = field(default_factory=set)
    # What POST or DELETE /calibrate chose, for /analyze's recognizer too, even one made after: the
    # file that make_recognizer() reads may not hold it (it could not be saved, or it was deleted).
    calibration_chosen: bool = False
    calibration: Calibration | None = None

    def tell(self, note: str) -> None:
        """A warning on the console, once: the live source's engine and /analyze's may have the same to say."""
        if note and note not in self.told:
            self.told.add(note)
            warn(note)

    def calibration_path(self) -> Path:
        return self.settings.calibration_file or saved_calibration_path()

    def use_calibration(self, calibration: Calibration | None) -> None:
        """/analyze reads faces as the live source does from now on (on a worker thread: waits for /analyze)."""
        with self.analyze_lock:
            self.calibration_chosen, self.calibration = True, calibration
            if self.analyzer is not None:
                self.analyzer.calibration = calibration

    def recognizer(self) -> EmotionRecognizer:
        """/analyze's recognizer, made on first use (hold ``analyze_lock``)."""
        if self.analyzer is None:
            self.analyzer = self.make_recognizer()
            if self.calibration_chosen:
                self.analyzer.calibration = self.calibration
            for note in (self.analyzer.detector.note, self.analyzer.calibration_note):
                self.tell(note)
        return self.analyzer


async def server_state(request: Request) -> ServerState:
    return request.app.state.server


ServerStateDep = Annotated[ServerState, Depends(server_state)]


async def require_live_source(state: ServerStateDep) -> None:
    if state.live_analysis is None:
        raise ApiError(404, "No live source: start the server with --camera N or --source FILE.")


async def listener_slot(state: ServerStateDep) -> AsyncIterator[None]:
    """A place among the /events listeners, held until the client goes, however it goes."""
    if state.listeners >= state.settings.max_listeners:
        raise ApiError(503, f"Already {state.settings.max_listeners} listeners; try again later.")
    state.listeners += 1
    try:
        yield
    finally:
        state.listeners -= 1
