"""The moodtunes window: the frame that the features (gui/controllers) fill.

It lays out the video, the side panel (each controller's section) and the timeline, builds the
menus and the toolbar from the controllers' named actions (MENUS, TOOLBAR), gives those actions
the keys of gui.keys.KEYS, and remembers its size and the choices made in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QToolButton, QVBoxLayout, QWidget

from emotion.recognizer import EmotionRecognizer
from emotion.settings import AppSettings
from emotion.sources import FrameSource, Warn
from gui.controllers import (
    CalibrationController,
    Controller,
    EngineController,
    Entry,
    PlaylistController,
    Submenu,
    TimelineController,
)
from gui.keys import KEYS
from gui.panel import SidePanel
from gui.settings import WindowChoices
from gui.widgets import StatusLine, VideoView

# The menus and the toolbar, by action name (see each controller's actions()); None: a separator.
MENUS = (
    ("&File", ("open", None, "quit")),
    ("&Playlist", ("playlist", None, "strategies")),
    ("&Video", ("pause", None, "calibrate", "reset_calibration", None, "cameras", "resolutions")),
    ("V&iew", ("summary",)),
)
TOOLBAR = ("playlist", "strategies", None, "pause", "calibrate", "quit")


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: AppSettings,
        store: QSettings,
        make_playlist: Callable | None = None,
        open_url: Callable[[str], object] | None = None,
        make_recognizer: Callable[[], EmotionRecognizer] | None = None,
        make_source: Callable[[Warn], FrameSource] | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("moodtunes")
        self.store = store
        self.choices = WindowChoices.load(store)
        self.view = VideoView()
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # holds the focus so shortcuts always work
        self.status_line = StatusLine()
        self.notice, self.status = self.status_line.notice, self.status_line.status
        self.statusBar().addWidget(self.status_line, 1)

        self.engine = EngineController(self, settings, self.choices, self.view, self.status_line, make_recognizer,
                                       make_source)
        self.calibration = CalibrationController(self, self.engine, settings.engine.calibration_path)
        self.playlist = PlaylistController(self, self.engine, self.choices.strategy, make_playlist, open_url)
        self.timeline = TimelineController(self, self.engine, self.playlist, settings.timeline_span_s)
        self.controllers: tuple[Controller, ...] = (self.engine, self.calibration, self.playlist, self.timeline)

        self.panel = SidePanel([c.section for c in self.controllers if c.section is not None])
        central = QWidget()
        column = QVBoxLayout(central)
        row = QHBoxLayout()
        row.addWidget(self.view, 1)
        row.addWidget(self.panel)
        column.addLayout(row, 1)
        column.addWidget(self.timeline.strip)
        self.setCentralWidget(central)
        self.quit_action = QAction("&Quit", self, triggered=self.close)
        self.entries: dict[str, Entry] = {"quit": self.quit_action}
        for controller in self.controllers:
            self.entries.update(controller.actions())
        self._bind_keys()
        self._build_menus()
        if self.choices.geometry:
            self.restoreGeometry(QByteArray(self.choices.geometry))
        else:
            self.resize(1100, 700)

    def action(self, name: str) -> QAction:
        """The action named ``name`` (one action, not a group or a submenu)."""
        entry = self.entries[name]
        if not isinstance(entry, QAction):
            raise TypeError(f"{name!r} names {type(entry).__name__}, not one action")
        return entry

    def _bind_keys(self) -> None:
        for binding in KEYS:
            action = self.action(binding.action)
            action.setShortcuts([QKeySequence(key) for key in binding.keys])
            self.addAction(action)  # the key works wherever the focus is

    def _build_menus(self) -> None:
        for title, names in MENUS:
            self._fill(self.menuBar().addMenu(title), names)
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        self._fill(toolbar, TOOLBAR)
        for button in toolbar.findChildren(QToolButton):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the window's keys (Space) must not press a button

    def _fill(self, bar: QWidget, names: tuple[str | None, ...]) -> None:
        """Add the named entries to a menu or the toolbar, in order."""
        for name in names:
            entry = None if name is None else self.entries[name]
            if entry is None:
                bar.addSeparator()
            elif isinstance(entry, QActionGroup):
                bar.addActions(entry.actions())
            elif isinstance(entry, Submenu):
                bar.addMenu(entry.title).addActions(list(entry.actions))
            else:
                bar.addAction(entry)

    def start(self) -> None:
        """Start capture and inference (model loading happens on the worker thread too)."""
        self.view.setFocus()
        self.engine.start()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's naming)
        self.choices = replace(self.engine.remembered(self.choices), strategy=self.playlist.strategy,
                               geometry=self.saveGeometry().data())
        self.choices.save(self.store)
        for controller in self.controllers:
            controller.close()
        event.accept()
