"""The moodtunes window: live video with the overlay, the mood panel and timeline, P for a playlist, C to calibrate."""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from emotion.calibration import (
    CAPTURE_SECONDS,
    CalibrationError,
    CalibrationStatus,
    delete_calibration,
    saved_calibration_path,
)
from emotion.cli import DEFAULT_RESOLUTION, recognizer_from_args, warn
from emotion.cli import resolution as parse_resolution
from emotion.history import SPAN_S, MoodHistory
from emotion.pipeline import EmotionPipeline, seconds_since_launch
from emotion.recognizer import EmotionRecognizer
from emotion.sources import CameraSource, Frame, FrameSource, SourceError, Warn, open_source
from gui.timeline import MoodTimeline, SessionSummary
from gui.widgets import NO_FACE, MoodPanel, StatusLine, VideoView
from gui.workers import AnalysisWorker, EngineInfo, PlaylistWorker, ViewFrame

if TYPE_CHECKING:
    from playlist.make import PlaylistResult

CAMERA_CHOICES = range(4)
# What the Video menu offers a camera: the default, 720p for a group across a room (more pixels per
# face; the README's "Speed and memory" has the measurements), and 1080p.
RESOLUTION_CHOICES = (DEFAULT_RESOLUTION, (1280, 720), (1920, 1080))
OPEN_FILTER = ("Photos and videos (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff *.mp4 *.avi *.mkv *.mov *.webm);;"
               "All files (*)")
# The window's own ways to a picture, where the command line would name --camera N / --source FILE.
OTHER_SOURCE = "Choose a camera in Video → Camera N, or open a photo or video with File → Open… (Ctrl+O)."
CALIBRATE_PROMPT = "Hold a relaxed, neutral face and look at the camera..."
CALIBRATE_NEEDS_FRAMES = (f"Calibration watches your face for {CAPTURE_SECONDS:.0f} seconds: choose a camera in "
                          "Video → Camera N, or open a video with File → Open… (Ctrl+O).")


@dataclass
class Options:
    source: str | None = None  # file/folder instead of the camera
    camera: int | None = None  # None: the camera chosen last time, else 0
    loop: bool = False
    checkpoint: str | None = None
    device: str = "auto"
    backend: str = "auto"
    first_face_report: bool = False  # print launch-to-first-face time (JSON) and quit: a benchmark
    detector: str = "auto"
    face_model: str | None = None
    calibration: str | None = None  # --calibration FILE: used, and where C saves; else the config folder's
    no_calibration: bool = False  # --no-calibration: start without the saved one (C still makes one)
    timeline_span_s: float = SPAN_S  # how far back the mood timeline reaches
    resolution: tuple[int, int] | None = None  # --resolution WxH; None: the one chosen last time, else the default


class WindowCamera(CameraSource):
    """A camera whose problems name the window's menus instead of the command line's --camera N."""

    def __init__(self, index: int, resolution: tuple[int, int], warn: Warn) -> None:
        try:
            super().__init__(index, resolution=resolution, warn=warn)
        except SourceError as exc:
            raise SourceError(f"Cannot open camera {index}: check that it is connected and not used by another "
                              f"app. {OTHER_SOURCE}") from exc

    def read(self) -> Frame | None:
        try:
            return super().read()
        except SourceError as exc:
            raise SourceError(f"Camera {self.index} stopped sending pictures: reconnect it and choose Video → Camera "
                              f"{self.index} again, or open a photo or video with File → Open… (Ctrl+O).") from exc


def window_recognizer(options: Options) -> EmotionRecognizer:
    """The recognizer the engine options ask for, built as the command line builds it (on the analysis thread).

    A calibration file that cannot be used does not stop the window, as it stops ``--headless``:
    the window is where C makes a new one, so it starts uncalibrated and its notice says why.
    """
    args = argparse.Namespace(**asdict(options))
    try:
        return recognizer_from_args(args)
    except CalibrationError as exc:
        args.no_calibration = True
        recognizer = recognizer_from_args(args)
        recognizer.calibration_note = str(exc)
        return recognizer


def deletion_problem(path: Path) -> str:
    """Delete the calibration file at ``path``; why it could not be, or "" (the window shows it, and goes on)."""
    try:
        delete_calibration(path)
    except CalibrationError as exc:
        return str(exc)
    return ""


def sentence(note: str) -> str:
    """A note (the engine's start lowercase, without a full stop) as a sentence of a notice."""
    return note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")


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


class MainWindow(QMainWindow):
    def __init__(
        self,
        options: Options,
        settings: QSettings,
        make_playlist: Callable | None = None,
        open_url: Callable[[str], object] | None = None,
        make_recognizer: Callable[[], EmotionRecognizer] | None = None,
        make_source: Callable[[Warn], FrameSource] | None = None,
    ) -> None:
        super().__init__()
        self.options = options
        self.settings = settings
        self.setWindowTitle("moodtunes")
        if open_url is None:
            import webbrowser

            open_url = webbrowser.open
        self._make_source = make_source
        self._make_recognizer = make_recognizer or (lambda: window_recognizer(options))
        self.calibration_path = Path(options.calibration) if options.calibration else saved_calibration_path()
        self.worker: AnalysisWorker | None = None
        self.latest: ViewFrame | None = None
        self.engine_text = ""
        self.source_kind = "camera" if options.source is None else "video"  # until the engine says
        self.source_problem = ""  # why nothing is analysed (no camera, ...): said alike everywhere
        self.source_ended = False
        # Captures numbered up to this one are over for the window (shown, or reset): see _show_capture.
        self._captures_done: float = 0
        self.clock = time.monotonic  # the timeline's clock: wall time, so a pause shows as a gap
        self.history = MoodHistory(span=options.timeline_span_s)

        self.view = VideoView()
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # holds the focus so shortcuts always work
        self.panel = MoodPanel()
        self.timeline = MoodTimeline(self.history, self.clock)
        central = QWidget()
        column = QVBoxLayout(central)
        row = QHBoxLayout()
        row.addWidget(self.view, 1)
        row.addWidget(self.panel)
        column.addLayout(row, 1)
        column.addWidget(self.timeline)
        self.setCentralWidget(central)
        self.status_line = StatusLine()
        self.notice, self.status = self.status_line.notice, self.status_line.status
        self.statusBar().addWidget(self.status_line, 1)
        self._notice_timer = QTimer(self, singleShot=True, timeout=lambda: self.status_line.set_notice(""))
        self.summary = SessionSummary(self)

        self.playlist_worker = PlaylistWorker(make_playlist or make_playlist_on_first_use, open_url)
        self.playlist_worker.progress.connect(lambda text: self.panel.show_playlist_text(html.escape(text)))
        self.playlist_worker.sign_in_link.connect(self.panel.show_sign_in)
        self.playlist_worker.done.connect(self._playlist_done)
        self.playlist_worker.failed.connect(self._playlist_failed)
        self.panel.cancel_button.clicked.connect(lambda: self.playlist_worker.cancel(timeout=0))
        self._build_actions()
        self._restore_settings()

    # --- actions ------------------------------------------------------------------------
    def _build_actions(self) -> None:
        self.playlist_action = QAction("Make &playlist", self, shortcut=QKeySequence("P"),
                                       triggered=self.make_playlist)
        self.pause_action = QAction("&Pause", self, shortcut=QKeySequence(Qt.Key.Key_Space), checkable=True,
                                    toggled=self.set_paused)
        self.open_action = QAction("&Open photo or video...", self, shortcut=QKeySequence.StandardKey.Open,
                                   triggered=self.ask_for_file)
        self.quit_action = QAction("&Quit", self, triggered=self.close)
        self.quit_action.setShortcuts([QKeySequence("Q"), QKeySequence(Qt.Key.Key_Escape)])
        self.calibrate_action = QAction("&Calibrate", self, shortcut=QKeySequence("C"), triggered=self.calibrate)
        self.calibrate_action.setToolTip(f"Calibrate (C): hold a relaxed, neutral face for {CAPTURE_SECONDS:.0f} s, "
                                         "and your resting face reads as neutral from then on")
        self.reset_calibration_action = QAction("&Reset calibration", self, triggered=self.reset_calibration)
        self.summary_action = QAction("Session &summary...", self, triggered=self.show_summary)
        self.strategy_group = QActionGroup(self)
        self.strategy_actions = {}
        for name, text in (("match", "&Match my mood"), ("lift", "&Lift my mood")):
            action = QAction(text, self, checkable=True)
            action.setData(name)
            self.strategy_group.addAction(action)
            self.strategy_actions[name] = action
        self.camera_group = QActionGroup(self)
        self.camera_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)  # none while a file plays
        self.camera_actions = {}
        for index in CAMERA_CHOICES:
            action = QAction(f"Camera {index}", self, checkable=True)
            action.triggered.connect(lambda _checked, i=index: self.choose_camera(i))
            self.camera_group.addAction(action)
            self.camera_actions[index] = action
        self.resolution_group = QActionGroup(self)
        self.resolution_actions = {}
        for size in RESOLUTION_CHOICES:
            action = QAction(f"{size[0]}×{size[1]}" + (" (default)" if size == DEFAULT_RESOLUTION else ""), self,
                             checkable=True)
            action.triggered.connect(lambda _checked, s=size: self.choose_resolution(s))
            self.resolution_group.addAction(action)
            self.resolution_actions[size] = action

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.open_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        playlist_menu = menus.addMenu("&Playlist")
        playlist_menu.addAction(self.playlist_action)
        playlist_menu.addSeparator()
        playlist_menu.addActions(self.strategy_group.actions())
        video_menu = menus.addMenu("&Video")
        video_menu.addAction(self.pause_action)
        video_menu.addSeparator()
        video_menu.addAction(self.calibrate_action)
        video_menu.addAction(self.reset_calibration_action)
        video_menu.addSeparator()
        video_menu.addActions(self.camera_group.actions())
        video_menu.addMenu("Camera &resolution").addActions(self.resolution_group.actions())
        view_menu = menus.addMenu("V&iew")
        view_menu.addAction(self.summary_action)
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.addAction(self.playlist_action)
        toolbar.addActions(self.strategy_group.actions())
        toolbar.addSeparator()
        toolbar.addAction(self.pause_action)
        toolbar.addAction(self.calibrate_action)
        toolbar.addAction(self.quit_action)
        for button in toolbar.findChildren(QToolButton):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must pause, not press a button
        for action in (self.playlist_action, self.pause_action, self.calibrate_action, self.quit_action):
            self.addAction(action)  # shortcuts work wherever the focus is

    @property
    def strategy(self) -> str:
        checked = self.strategy_group.checkedAction()
        return checked.data() if checked else "match"

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 700)
        strategy = self.settings.value("playlist/strategy", "match")
        self.strategy_actions.get(strategy, self.strategy_actions["match"]).setChecked(True)
        if self.options.camera is None:  # --camera N on the command line wins over the remembered one
            self.options.camera = int(self.settings.value("video/camera", 0))
        action = self.camera_actions.get(self.options.camera)
        if action is not None and self.options.source is None:
            action.setChecked(True)
        if self.options.resolution is None:  # --resolution on the command line wins over the remembered one
            try:
                self.options.resolution = parse_resolution(str(self.settings.value("video/resolution", "")))
            except argparse.ArgumentTypeError:  # none saved yet, or a hand-edited value
                self.options.resolution = DEFAULT_RESOLUTION
        chosen = self.resolution_actions.get(tuple(self.options.resolution))
        if chosen is not None:
            chosen.setChecked(True)

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("playlist/strategy", self.strategy)
        if self.options.source is None:
            self.settings.setValue("video/camera", self.options.camera)
        self.settings.setValue("video/resolution", "{}x{}".format(*self.options.resolution))
        self.settings.sync()

    # --- the engine ---------------------------------------------------------------------
    def start(self) -> None:
        """Start capture and inference (model loading happens on the worker thread too)."""
        self.view.setFocus()
        options = self.options
        source, camera, loop, size = options.source, options.camera, options.loop, options.resolution

        def open_for_window(warn: Warn) -> FrameSource:  # on the analysis thread
            return WindowCamera(camera, size, warn) if source is None else open_source(source, loop=loop, warn=warn)

        self.worker = AnalysisWorker(self._make_source or open_for_window,
                                     lambda: EmotionPipeline(self._make_recognizer()))
        self.worker.ready.connect(self._engine_ready)
        self.worker.frame_ready.connect(self._show_latest)
        self.worker.failed.connect(self._engine_failed)
        self.worker.warning.connect(self._warn)
        self.worker.finished.connect(self._source_ended)
        self.worker.set_paused(self.pause_action.isChecked())
        self.worker.start()

    def show_notice(self, text: str, timeout_ms: int = 0) -> None:
        """A message in the status bar; it stays until replaced, or for ``timeout_ms``."""
        self.status_line.set_notice(text)
        if timeout_ms:
            self._notice_timer.start(timeout_ms)
        else:
            self._notice_timer.stop()

    def _warn(self, message: str) -> None:
        warn(message)
        self.show_notice(message, 15000)

    def _engine_ready(self, info: EngineInfo) -> None:
        detector = info.detector + (" (YuNet unavailable)" if info.note else "")
        self.engine_text = f"{info.device} ({info.backend}) · {detector} · {info.checkpoint} · {info.source}"
        self.source_kind = info.source_kind
        self.view.no_face_text = NO_FACE[info.source_kind]
        self._update_status()
        for note in (info.note, info.calibration_note):
            if note:
                warn(note)
        notes = " ".join(sentence(note) for note in (info.note, info.calibration_note) if note)
        if notes:
            self.show_notice(notes, 15000)

    def _update_status(self) -> None:
        """The frame rate (only while frames come: not paused, not a still) and the engine."""
        if self.source_problem:
            self.status_line.set_status("Not running: " + self.source_problem)
            return
        frame, paused, parts = self.latest, self.pause_action.isChecked(), []
        if frame is not None and frame.analysis.photo:
            parts.append(f"photo {frame.analysis.photo}")
        elif paused:
            parts.append("paused")
        elif frame is not None and frame.fps is not None and not self.source_ended:
            parts.append(f"{frame.fps:.1f} fps")
        self.status_line.set_status(" · ".join([*parts, self.engine_text]))

    def _source_ended(self, kind: str) -> None:
        self.source_ended = True
        self._update_status()
        if self.view.capture is not None:  # a capture was under way
            self._end_capture(f"The video ended before the {CAPTURE_SECONDS:.0f} seconds of the calibration: use "
                              "the camera or a longer video.")
        if kind == "photos":  # the last photo stays on screen as a still, with its analysis
            if self.options.source and Path(self.options.source).is_dir():
                self.show_notice("That was the last photo in the folder.")
        else:
            self.view.show_message("End of the video. Open it again with File → Open… (Ctrl+O) to replay it.")

    def _engine_failed(self, message: str) -> None:
        self.source_problem = message
        self.view.show_message(message)
        self.panel.show_problem(message)
        self._update_status()
        if self.view.capture is not None:
            self._end_capture("The calibration stopped: nothing is being analysed.")

    def _show_latest(self) -> None:
        frame = self.worker.take_latest() if self.worker else None
        if frame is None:  # an older signal whose frame was already shown
            return
        self.latest = frame
        mood = frame.analysis.mood
        self.history.add(self.clock(), mood.label if mood else None)
        self.view.show_frame(frame)
        self.panel.show_analysis(frame, NO_FACE[self.source_kind])
        self._show_capture(frame.analysis.calibration)
        if self.options.first_face_report and frame.analysis.faces:
            self.view.repaint()  # painted, not just scheduled: that is what the user sees
            print(json.dumps({"launch_to_first_face_s": round(seconds_since_launch(), 3),
                              "backend": self.engine_text}), flush=True)
            self.options.first_face_report = False
            QTimer.singleShot(0, self.close)
        self._update_status()

    def set_paused(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(paused)
        self.show_notice("Paused - press Space to resume" if paused else "")
        self._update_status()

    def choose_camera(self, index: int) -> None:
        """Show camera ``index`` (also the way back from a photo or video)."""
        if index == self.options.camera and self.options.source is None and self.worker is not None:
            return
        self.options.camera, self.options.source = index, None
        self._restart(f"Opening camera {index}...")

    def choose_resolution(self, size: tuple[int, int]) -> None:
        """Ask the camera for ``size`` from now on (a camera that cannot give it says what it gives instead)."""
        if tuple(self.options.resolution) == size:
            return
        self.options.resolution = size
        if self.options.source is None and self.worker is not None:
            self._restart(f"Opening camera {self.options.camera} at {size[0]}×{size[1]}...")

    def ask_for_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open photo or video", "", OPEN_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        """Analyse a photo (shown as a still; P makes its playlist) or a video instead of the camera."""
        self.options.source = path
        checked = self.camera_group.checkedAction()
        if checked is not None:
            checked.setChecked(False)
        self._restart(f"Opening {Path(path).name}...")

    def _restart(self, message: str) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.latest = None
        self.view.frame = None
        self.source_problem, self.source_ended = "", False
        self._captures_done = 0  # the new pipeline numbers its captures from 1
        self.view.show_capture(None)
        self.show_notice("")
        self.view.show_message(message)
        self.start()

    # --- calibration --------------------------------------------------------------------
    def calibrate(self) -> None:
        """C: capture the person's neutral face on the analysis thread, and save it where the next start finds it."""
        if self.worker is None or not self.worker.running:  # no camera, a still photo, a video that ended
            self.panel.show_calibration_result(self.source_problem or CALIBRATE_NEEDS_FRAMES)
            return
        if self.pause_action.isChecked():
            self.pause_action.setChecked(False)  # the capture needs frames
        status = self.latest.analysis.calibration if self.latest else None
        self._captures_done = status.number if status else 0  # the result of an earlier capture is not this one's
        path = self.calibration_path
        self.worker.submit(lambda pipeline: pipeline.start_calibration(save_to=path))
        self.panel.show_capture(CALIBRATE_PROMPT, 0.0)
        self.view.show_capture(CALIBRATE_PROMPT, 0.0)

    def _show_capture(self, status: CalibrationStatus | None) -> None:
        if status is None or status.number <= self._captures_done:
            return
        if status.state == "capturing":
            self.panel.show_capture(status.message, status.progress)
            self.view.show_capture(status.message, status.progress)
            return
        self._end_capture(status.message)
        self._captures_done = status.number

    def _end_capture(self, message: str) -> None:
        self.panel.show_calibration_result(message)
        self.view.show_capture(None)

    def reset_calibration(self) -> None:
        """Stop using the calibration and delete its file, so that the next start does not load it."""
        path = self.calibration_path
        self._captures_done = math.inf  # a capture under way is cancelled: its status must not come back
        if self.worker is not None and self.worker.running:
            worker = self.worker

            def forget(pipeline: EmotionPipeline) -> None:
                pipeline.reset_calibration()
                problem = deletion_problem(path)  # again: a capture that ended just before may have saved
                if problem:
                    worker.warning.emit(problem)

            worker.submit(forget)
        problem = deletion_problem(path)  # now, too: a paused or ended source runs no task
        self._end_capture(problem or "Calibration reset: your face is read by the model alone.")

    # --- the mood over time ------------------------------------------------------------
    def show_summary(self) -> None:
        self.summary.show_history(self.history)

    # --- playlists ----------------------------------------------------------------------
    def make_playlist(self) -> None:
        if self.playlist_worker.busy:
            self.show_notice("Already making a playlist...", 4000)
            return
        mood = self.latest.analysis.mood if self.latest else None
        if mood is None:
            why = self.source_problem or NO_FACE[self.source_kind]
            self.panel.show_playlist_text(html.escape(f"No mood yet. {why}"))
            return
        self.history.mark(self.clock(), mood.label)
        self.timeline.update()
        self.panel.show_playlist_text(f"Making a {html.escape(self.strategy)} playlist for "
                                      f"<b>{html.escape(mood.label)}</b>...")
        self.playlist_worker.start(mood.label, mood.confidence, self.strategy)

    def _playlist_done(self, result: PlaylistResult) -> None:
        self.panel.show_sign_in(None)
        self.panel.show_playlist_text(
            f"<b>{html.escape(result.name)}</b><br>{result.track_count} tracks · "
            f'<a href="{html.escape(result.url)}">open in Spotify</a>'
            + "".join(f"<br><i>{html.escape(note)}</i>" for note in result.notes)
        )

    def _playlist_failed(self, message: str, fallback_url: str) -> None:
        self.panel.show_sign_in(None)
        text = linkified(message)
        if fallback_url:
            text += f'<br><br><a href="{html.escape(fallback_url)}">Search Spotify for this mood</a> meanwhile.'
        self.panel.show_playlist_text(text)

    # --- shutdown -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's naming)
        self._save_settings()
        if self.worker is not None:
            self.worker.stop(timeout=0.8)
        self.playlist_worker.cancel(timeout=0.2)
        event.accept()
