"""P in the window: a Spotify playlist from the current mood, made on a thread of its own and started on
the user's Spotify ("Play when made"), and the match / lift strategy it is made with."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup

from gui.controllers.base import Controller, Entry
from gui.controllers.engine import EngineController
from gui.panel import PlaylistSection
from gui.widgets import NO_FACE
from gui.workers import PlaylistWorker
from playlist.profiles import STRATEGIES

if TYPE_CHECKING:
    from playlist.make import PlaylistResult

STRATEGY_TEXTS = {"match": "&Match my mood", "lift": "&Lift my mood"}


def linkified(text: str) -> str:
    """``text`` as rich text: each numbered step ("1) ...") on a line of its own, and every https address a
    link (the setup steps name Spotify's dashboard; the http://127.0.0.1 redirect address is no page to open)."""
    text = html.escape(text, quote=False)
    text = re.sub(r"https://[^\s<>\"]+[^\s<>\".,;:)]", lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', text)
    return re.sub(r" (\d\)) ", r"<br>\1 ", text)


def make_playlist_on_first_use(*args: object, **kwargs: object) -> PlaylistResult:
    """playlist.make (spotipy, requests) loads on the first P, not at start-up: most runs never press it."""
    from playlist.make import make_playlist

    return make_playlist(*args, **kwargs)


class PlaylistController(Controller):
    requested = Signal(str)  # P made a playlist start for this mood (the timeline marks the moment)
    played = Signal(str, object)  # P's playlist started playing: the mood it was made for, its PlaylistResult

    def __init__(self, window: QObject, engine: EngineController, strategy: str,
                 make_playlist: Callable | None = None, open_url: Callable[[str], object] | None = None,
                 play_when_made: bool = True, remembered_play: bool = True) -> None:
        super().__init__(window)
        if open_url is None:
            import webbrowser

            open_url = webbrowser.open
        self.engine = engine
        self.section = PlaylistSection()
        self.worker = PlaylistWorker(make_playlist or make_playlist_on_first_use, open_url)
        self.worker.progress.connect(lambda text: self.section.show_text(html.escape(text)))
        self.worker.sign_in_link.connect(self.section.show_sign_in)
        self.worker.done.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.section.cancel_button.clicked.connect(lambda: self.worker.cancel(timeout=0))
        self.action = QAction("Make &playlist", self, triggered=self.make_playlist)
        self.strategy_group = QActionGroup(self)
        self.strategy_actions: dict[str, QAction] = {}
        for name in STRATEGIES:
            action = QAction(STRATEGY_TEXTS[name], self, checkable=True)
            action.setData(name)
            self.strategy_group.addAction(action)
            self.strategy_actions[name] = action
        self.strategy_actions[strategy].setChecked(True)
        self.play_action = QAction("Play &when made", self, checkable=True, checked=play_when_made)
        self.play_action.setToolTip("P also starts the playlist on your Spotify (Premium); off: P only makes it")
        # What the window remembers: the menu's choice, not --no-play's for this run.
        self.remembered_play = remembered_play
        self.play_action.triggered.connect(lambda on: setattr(self, "remembered_play", on))
        self._mood_asked = ""

    def actions(self) -> dict[str, Entry]:
        return {"playlist": self.action, "strategies": self.strategy_group, "play_when_made": self.play_action}

    @property
    def strategy(self) -> str:
        checked = self.strategy_group.checkedAction()
        return checked.data() if checked else "match"

    def make_playlist(self) -> None:
        if self.worker.busy:
            self.engine.status.show_notice("Already making a playlist...", 4000)
            return
        latest = self.engine.latest
        mood = latest.analysis.mood if latest else None
        if mood is None:
            engine = self.engine
            if engine.source_problem:  # the video says it in full
                why = f"{engine.short_problem}."
            else:
                why = NO_FACE[engine.source_kind] if latest else "Starting…"  # no "no face" before the first frame
            self.section.show_text(html.escape(f"No mood yet. {why}"))
            return
        self.requested.emit(mood.label)
        self.section.show_text(f"Making a {html.escape(self.strategy)} playlist for "
                               f"<b>{html.escape(mood.label)}</b>...")
        self._mood_asked = mood.label
        self.worker.start(mood.label, mood.confidence, self.strategy, play=self.play_action.isChecked())

    def close(self) -> None:
        self.worker.cancel(timeout=0.2)

    def _done(self, result: PlaylistResult) -> None:
        self.section.show_sign_in(None)
        playing = f"<br>Playing on {html.escape(result.device, quote=False)}." if result.device else ""
        problem = f"<br>{linkified(result.play_problem)}" if result.play_problem else ""
        self.section.show_text(
            f"<b>{html.escape(result.name)}</b><br>{result.track_count} tracks · "
            f'<a href="{html.escape(result.url)}">open in Spotify</a>{playing}{problem}'
            + "".join(f"<br><i>{html.escape(note)}</i>" for note in result.notes)
        )
        if result.device:
            self.played.emit(self._mood_asked, result)

    def _failed(self, message: str, fallback_url: str) -> None:
        self.section.show_sign_in(None)
        text = linkified(message)
        if fallback_url:
            text += f'<br><br><a href="{html.escape(fallback_url)}">Search Spotify for this mood</a> meanwhile.'
        self.section.show_text(text)
