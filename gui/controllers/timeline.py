"""The mood over time: the history fed from each frame shown, its strip below the video, the playlist
presses marked on it, and the session summary (View menu)."""

from __future__ import annotations

import time

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from emotion.history import MoodHistory
from gui.controllers.base import Controller, Entry
from gui.controllers.engine import EngineController
from gui.controllers.playlist import PlaylistController
from gui.timeline import MoodTimeline, SessionSummary
from gui.workers import ViewFrame


class TimelineController(Controller):
    def __init__(self, window: QWidget, engine: EngineController, playlist: PlaylistController,
                 span_s: float) -> None:
        super().__init__(window)
        self.clock = time.monotonic  # wall time, so a pause shows as a gap
        self.history = MoodHistory(span=span_s)
        self.strip = MoodTimeline(self.history, self.clock)
        self.summary = SessionSummary(window)
        self.summary_action = QAction("Session &summary...", self, triggered=self.show_summary)
        engine.frame_shown.connect(self._frame_shown)
        playlist.requested.connect(self._mark)

    def actions(self) -> dict[str, Entry]:
        return {"summary": self.summary_action}

    def show_summary(self) -> None:
        self.summary.show_history(self.history)

    def _frame_shown(self, frame: ViewFrame) -> None:
        mood = frame.analysis.mood
        self.history.add(self.clock(), mood.label if mood else None)

    def _mark(self, label: str) -> None:
        self.history.mark(self.clock(), label)
        self.strip.update()
