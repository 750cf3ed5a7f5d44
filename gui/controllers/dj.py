"""The DJ in the window: "Follow my mood" (F), Like (L) and Skip (N), and the side panel's DJ section.

It owns a :class:`~playlist.dj_worker.DJSession`, fed on the GUI thread with each shown frame's
stream time and the main face's smoothed mood: that call only decides (pure logic) and hands
requests to the session's worker thread, which alone talks to Spotify. What the worker did comes
back as immutable actions, collected with each frame and by a timer (no frames come while paused).
The session, and with it spotipy, loads on first use: most runs never follow a mood.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction

from emotion.settings import AppSettings
from gui.controllers.base import Controller, Entry
from gui.controllers.engine import EngineController
from gui.controllers.playlist import PlaylistController, linkified
from gui.keys import key_of
from gui.panel import DJSection
from gui.workers import ViewFrame
from playlist.dj import ERROR, PLAY, QUEUE, DJAction  # pure decisions: no spotipy, no HTTP

if TYPE_CHECKING:
    from playlist.dj_worker import DJSession
    from playlist.make import PlaylistResult

RECENT_SHOWN = 4  # the DJ's last few actions in the panel
COLLECT_EVERY_MS = 250  # how often the worker's results are collected when no frame comes
CLOSE_TIMEOUT_S = 0.1  # the window closes at once: a request in flight is abandoned (the thread is a daemon)


class DJController(Controller):
    music_changed = Signal(float, str)  # the DJ played or queued: how many stream seconds ago it decided, the mood
    _said = Signal(str)  # a line from the DJ's thread, shown on the GUI thread

    def __init__(self, window: QObject, engine: EngineController, playlist: PlaylistController,
                 settings: AppSettings) -> None:
        super().__init__(window)
        self.engine, self.playlist = engine, playlist
        self._hold_s, self._gap_s = settings.follow_hold_s, settings.follow_gap_s
        self.section = DJSection()
        self.session: DJSession | None = None
        self._offset = 0.0  # added to each frame's stream time: the DJ's clock never goes back (a loop, a new file)
        self._t = 0.0  # the DJ's clock at the latest frame
        self._recent: list[str] = []
        self._said.connect(self._show_line)
        self.follow_action = QAction("&Follow my mood", self, checkable=True, toggled=self.set_following)
        self.follow_action.setToolTip(f"Follow my mood ({key_of('follow')}): the music changes when a new mood "
                                      "holds (Spotify Premium)")
        self.like_action = QAction("&Like this track", self, triggered=self.like)
        self.like_action.setToolTip(f"Like ({key_of('like')}): save the playing track and remember it for its mood")
        self.skip_action = QAction("S&kip this track", self, triggered=self.skip)
        self.skip_action.setToolTip(f"Skip ({key_of('skip')}): the next track; this one never again for its mood")
        engine.frame_shown.connect(self._frame_shown)
        playlist.played.connect(self._played)
        playlist.strategy_group.triggered.connect(lambda _action: self._use_strategy())
        self.section.sign_in_button.clicked.connect(self.playlist.make_playlist)  # P's sign-in, then it plays
        self._timer = QTimer(self, interval=COLLECT_EVERY_MS, timeout=self._collect)
        if settings.follow:
            self.follow_action.setChecked(True)

    def actions(self) -> dict[str, Entry]:
        return {"follow": self.follow_action, "like": self.like_action, "skip": self.skip_action}

    def _session(self) -> DJSession:
        """The session, made on first use (it loads spotipy)."""
        if self.session is None:
            from playlist.cli import follow_settings
            from playlist.dj_worker import DJSession, DJWorker

            worker = DJWorker.for_user(f"press {key_of('playlist')}", self._say)
            self.session = DJSession(worker, follow_settings(self._hold_s, self._gap_s, self.playlist.strategy))
            self._timer.start()
        return self.session

    def _say(self, line: str) -> None:
        """On the DJ's thread: hand the line to the GUI thread (gone with the window: nobody to tell)."""
        with contextlib.suppress(RuntimeError):
            self._said.emit(line)

    # --- what the person does ----------------------------------------------------------------
    def set_following(self, on: bool) -> None:
        self._session().following = on
        self.engine.status.show_notice("Following your mood: the music changes when a new mood holds." if on
                                       else "Not following your mood.", 4000)
        self._show_state()

    def like(self) -> None:
        self._session().like(self._t)

    def skip(self) -> None:
        self._session().skip(self._t)

    def close(self) -> None:
        self._timer.stop()
        if self.session is not None:
            self.session.worker.close(timeout=CLOSE_TIMEOUT_S)

    # --- what comes in -------------------------------------------------------------------------
    def _frame_shown(self, frame: ViewFrame) -> None:
        t = frame.analysis.timestamp + self._offset
        if t < self._t:  # the file looped or another source opened: its clock starts again
            self._offset += self._t - t
            t = self._t
        self._t = t
        if self.session is None:
            return
        mood = frame.analysis.mood
        self._handle(self.session.observe(t, mood.label if mood else None))

    def _played(self, mood: str, result: PlaylistResult) -> None:
        """P started a playlist: the music changed, and its tracks are the DJ's (never queued again)."""
        self._session().played(self._t, mood, result.tracks)
        self.section.show_problem("")  # music plays: whatever stood in the way (a sign-in, no device) is over

    def _collect(self) -> None:
        if self.session is not None:
            self._handle(self.session.wait(0))

    def _use_strategy(self) -> None:
        if self.session is not None:
            self.session.dj.settings = replace(self.session.dj.settings, strategy=self.playlist.strategy)

    def _handle(self, actions: list[DJAction]) -> None:
        for action in actions:
            if action.action == ERROR:
                self.section.show_problem(linkified(action.detail), sign_in=action.reason == "sign_in")
                continue
            self.section.show_problem("")
            self._recent = [*self._recent, f"{time.strftime('%H:%M')} {action.detail}"][-RECENT_SHOWN:]
            if action.action in (PLAY, QUEUE) and action.mood:
                self.music_changed.emit(max(0.0, self._t - action.t), action.mood)
        self._show_state()

    def _show_line(self, line: str) -> None:
        self.section.show_problem(linkified(line), sign_in=self.section.sign_in_button.isVisible())

    def _show_state(self) -> None:
        if self.session is None:
            return
        state = self.session.state
        mood, held = state.holding
        self.section.show_following(state.following, mood, held, self.session.dj.settings.hold_s)
        playing = state.now_playing
        self.section.show_track(playing.track, playing.mood, playing.device)
        self.section.show_recent(self._recent)

