"""The camera and engine life cycle: which source is analysed, the analysis thread, pause, and what
the video, the mood section and the status line say about it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFileDialog

from emotion.calibration import CalibrationError
from emotion.cli import warn
from emotion.live import PipelineTask
from emotion.pipeline import EmotionPipeline, seconds_since_launch
from emotion.recognizer import EmotionRecognizer
from emotion.settings import DEFAULT_RESOLUTION, AppSettings, EngineSettings, SourceSettings
from emotion.sources import CameraSource, Frame, FrameSource, SourceError, Warn, open_source
from gui.controllers.base import Controller, Entry, Submenu
from gui.keys import key_of
from gui.panel import MoodSection
from gui.settings import WindowChoices
from gui.widgets import NO_FACE, STARTING, StatusLine, VideoView
from gui.workers import AnalysisWorker, EngineInfo, ViewFrame

CAMERA_CHOICES = range(4)
# What the Video menu offers a camera: the default, 720p for a group across a room (more pixels per
# face; the README's "Speed and memory" has the measurements), and 1080p.
RESOLUTION_CHOICES = (DEFAULT_RESOLUTION, (1280, 720), (1920, 1080))
OPEN_FILTER = ("Photos and videos (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff *.mp4 *.avi *.mkv *.mov *.webm);;"
               "All files (*)")
OPEN_HINT = f"File → Open… ({key_of('open')})"
# The window's own ways to a picture, where the command line would name --camera N / --source FILE.
OTHER_SOURCE = f"Choose a camera in Video → Camera N, or open a photo or video with {OPEN_HINT}."
CAMERA_PROBLEMS = ("Cannot open camera", "Camera ")  # how WindowCamera's problems begin


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
                              f"{self.index} again, or open a photo or video with {OPEN_HINT}.") from exc


def window_recognizer(engine: EngineSettings) -> EmotionRecognizer:
    """The recognizer the settings ask for (on the analysis thread).

    A calibration file that cannot be used does not stop the window, as it stops ``--headless``:
    the window is where C makes a new one, so it starts uncalibrated and its notice says why.
    """
    try:
        return engine.make_recognizer()
    except CalibrationError as exc:
        recognizer = replace(engine, use_calibration=False).make_recognizer()
        recognizer.calibration_note = str(exc)
        return recognizer


def sentence(note: str) -> str:
    """A note (the engine's start lowercase, without a full stop) as a sentence of a notice."""
    return note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")


class EngineController(Controller):
    """Owns the analysis worker and the source it reads; shows each frame on the video and the mood section."""

    frame_shown = Signal(object)  # a ViewFrame, once the video and the mood section show it
    restarted = Signal()  # another source is opening: what the old one showed is gone
    failed = Signal(str)  # nothing is being analysed; why
    source_ended = Signal(str)  # the video or the photos ended (their kind)

    def __init__(self, window: QObject, settings: AppSettings, choices: WindowChoices, view: VideoView,
                 status: StatusLine, make_recognizer: Callable[[], EmotionRecognizer] | None = None,
                 make_source: Callable[[Warn], FrameSource] | None = None) -> None:
        super().__init__(window)
        given = settings.source  # the command line wins over the remembered choices
        self.source: SourceSettings = replace(
            given, camera=choices.camera if given.camera is None else given.camera,
            resolution=given.resolution or choices.resolution)
        self.view, self.status = view, status
        self.section = MoodSection()
        self._make_recognizer = make_recognizer or (lambda: window_recognizer(settings.engine))
        self._make_source = make_source
        self._report_first_face = settings.first_face_report
        self.worker: AnalysisWorker | None = None
        self.latest: ViewFrame | None = None
        self.engine_text = ""
        self.source_kind = "camera" if given.path is None else "video"  # until the engine says
        # Why nothing is analysed (no camera, ...): said in full once, on the video; elsewhere short_problem.
        self.source_problem = ""
        self._told: set[str] = set()  # the engine's notes already printed: each restart makes them again
        self.calibration_note = ""  # why the saved calibration is not used, while that holds
        view.message = self.opening_message()
        self.ended = False
        # The analysis thread must end with the window even when the window is deleted without being
        # closed (a test's, dropped at its end): Qt then deletes this controller, and "destroyed" stops
        # the thread. A plain list, not self: self is half gone by then.
        self._live_workers: list[AnalysisWorker] = []
        self.destroyed.connect(lambda _obj=None, workers=self._live_workers: [w.stop(0.8) for w in workers])
        self._build_actions()

    def _build_actions(self) -> None:
        self.open_action = QAction("&Open photo or video...", self, triggered=self.ask_for_file)
        self.pause_action = QAction("&Pause", self, checkable=True, toggled=self.set_paused)
        self.camera_group = QActionGroup(self)
        self.camera_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)  # none while a file plays
        self.camera_actions: dict[int, QAction] = {}
        for index in CAMERA_CHOICES:
            action = QAction(f"Camera {index}", self, checkable=True)
            action.triggered.connect(lambda _checked, i=index: self.choose_camera(i))
            self.camera_group.addAction(action)
            self.camera_actions[index] = action
        if self.on_camera and self.source.camera in self.camera_actions:
            self.camera_actions[self.source.camera].setChecked(True)
        self.resolution_group = QActionGroup(self)
        self.resolution_actions: dict[tuple[int, int], QAction] = {}
        for size in RESOLUTION_CHOICES:
            action = QAction(f"{size[0]}×{size[1]}" + (" (default)" if size == DEFAULT_RESOLUTION else ""), self,
                             checkable=True)
            action.triggered.connect(lambda _checked, s=size: self.choose_resolution(s))
            self.resolution_group.addAction(action)
            self.resolution_actions[size] = action
        if self.source.resolution in self.resolution_actions:
            self.resolution_actions[self.source.resolution].setChecked(True)

    def actions(self) -> dict[str, Entry]:
        return {"open": self.open_action, "pause": self.pause_action, "cameras": self.camera_group,
                "resolutions": Submenu("Camera &resolution", tuple(self.resolution_group.actions()))}

    @property
    def on_camera(self) -> bool:
        return self.source.path is None

    @property
    def short_problem(self) -> str:
        """The source problem as the panel and the status line name it; the video says it in full."""
        if not self.source_problem:
            return ""
        return "No camera" if self.source_problem.startswith(CAMERA_PROBLEMS) else "Not running"

    def opening_message(self) -> str:
        """What the video says until the first frame arrives."""
        if self.on_camera:
            return STARTING["camera"]
        return STARTING["file"].format(name=Path(self.source.path).name)

    def remembered(self, choices: WindowChoices) -> WindowChoices:
        """``choices`` with this run's camera (unless a file plays) and resolution."""
        camera = self.source.camera if self.on_camera else choices.camera
        return replace(choices, camera=camera, resolution=self.source.camera_size)

    # --- the analysis thread -------------------------------------------------------------
    def start(self, first_task: PipelineTask | None = None) -> None:
        """Start capture and inference (the model loads on the worker thread too); ``first_task`` runs on
        the analysis thread before its first frame."""
        source = self.source

        def open_for_window(warn: Warn) -> FrameSource:  # on the analysis thread
            if source.path is None:
                return WindowCamera(source.camera, source.camera_size, warn)
            return open_source(source.path, loop=source.loop, warn=warn)

        self.worker = AnalysisWorker(self._make_source or open_for_window,
                                     lambda: EmotionPipeline(self._make_recognizer()))
        self.worker.ready.connect(self._engine_ready)
        self.worker.frame_ready.connect(self._show_latest)
        self.worker.failed.connect(self._engine_failed)
        self.worker.warning.connect(self.warn)
        self.worker.finished.connect(self._source_ended)
        self.worker.set_paused(self.pause_action.isChecked())
        if first_task is not None:
            self.worker.submit(first_task)
        self._live_workers[:] = [self.worker]
        self.worker.start()

    def close(self, timeout: float = 0.8) -> None:
        """Stop the analysis thread, waiting up to ``timeout`` s (the window closes at once either way)."""
        if self.worker is not None:
            self.worker.stop(timeout)

    def warn(self, message: str) -> None:
        warn(message)
        self.status.show_notice(message, 15000)

    def _engine_ready(self, info: EngineInfo) -> None:
        detector = info.detector + (" (YuNet unavailable)" if info.note else "")
        self.engine_text = f"{info.device} ({info.backend}) · {detector} · {info.checkpoint} · {info.source}"
        self.source_kind = info.source_kind
        self.view.no_face_text = NO_FACE[info.source_kind]
        self.calibration_note = info.calibration_note
        self.update_status()
        notes = [note for note in (info.note, info.calibration_note) if note and note not in self._told]
        for note in notes:  # once per window: a new source makes the same notes again
            warn(note)
            self._told.add(note)
        if notes:
            self.status.show_notice(" ".join(sentence(note) for note in notes), 15000)

    def calibrated(self) -> None:
        """A new calibration is in use: the note on why the old one was not is no longer true."""
        if self.calibration_note and sentence(self.calibration_note) in self.status.notice.text():
            self.status.show_notice("")
        self.calibration_note = ""

    def update_status(self) -> None:
        """The frame rate (only while frames come: not paused, not a still) and the engine."""
        if self.source_problem:
            self.status.set_status("Not running" + (": no camera" if self.short_problem == "No camera" else ""))
            return
        frame, parts = self.latest, []
        if frame is not None and frame.analysis.photo:
            parts.append(f"photo {frame.analysis.photo}")
        elif self.pause_action.isChecked():
            parts.append("paused")
        elif frame is not None and frame.fps is not None and not self.ended:
            parts.append(f"{frame.fps:.1f} fps")
        self.status.set_status(" · ".join(part for part in (*parts, self.engine_text) if part))

    def _source_ended(self, kind: str) -> None:
        self.ended = True
        self.update_status()
        self.source_ended.emit(kind)
        if kind == "photos":  # the last photo stays on screen as a still, with its analysis
            if self.source.path and Path(self.source.path).is_dir():
                self.status.show_notice("That was the last photo in the folder.")
        else:
            self.view.show_message(f"End of the video. Open it again with {OPEN_HINT} to replay it.")

    def _engine_failed(self, message: str) -> None:
        self.source_problem = message
        self.view.show_message(message)
        self.section.show_problem(self.short_problem)
        self.update_status()
        self.failed.emit(message)

    def _show_latest(self) -> None:
        frame = self.worker.take_latest() if self.worker else None
        if frame is None:  # an older signal whose frame was already shown
            return
        self.latest = frame
        self.view.show_frame(frame)
        self.section.show_analysis(frame, NO_FACE[self.source_kind])
        self.frame_shown.emit(frame)
        if self._report_first_face and frame.analysis.faces:
            self.view.repaint()  # painted, not just scheduled: that is what the user sees
            print(json.dumps({"launch_to_first_face_s": round(seconds_since_launch(), 3),
                              "backend": self.engine_text}), flush=True)
            self._report_first_face = False
            QTimer.singleShot(0, self.view.window().close)
        self.update_status()

    # --- what the person chooses ---------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(paused)
        self.status.show_notice(f"Paused - press {key_of('pause')} to resume" if paused else "")
        self.update_status()

    def choose_camera(self, index: int) -> None:
        """Show camera ``index`` (also the way back from a photo or video)."""
        if index == self.source.camera and self.on_camera and self.worker is not None:
            return
        self.source = replace(self.source, camera=index, path=None)
        self._restart(f"Starting camera {index}…")

    def choose_resolution(self, size: tuple[int, int]) -> None:
        """Ask the camera for ``size`` from now on (a camera that cannot give it says what it gives instead)."""
        if self.source.camera_size == size:
            return
        self.source = replace(self.source, resolution=size)
        if self.on_camera and self.worker is not None:
            self._restart(f"Starting camera {self.source.camera} at {size[0]}×{size[1]}…")

    def ask_for_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.view.window(), "Open photo or video", "", OPEN_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        """Analyse a photo (shown as a still; P makes its playlist) or a video instead of the camera."""
        self.source = replace(self.source, path=path)
        checked = self.camera_group.checkedAction()
        if checked is not None:
            checked.setChecked(False)
        self._restart(self.opening_message())

    def rerun(self, first_task: PipelineTask) -> None:
        """Open the same source again, with ``first_task`` before its first frame (C on a still that was shown)."""
        self._restart(self.opening_message(), first_task)

    def _restart(self, message: str, first_task: PipelineTask | None = None) -> None:
        """Another source (or the same again): what the old one showed goes from the video, the panel and the
        status line."""
        if self.worker is not None:
            self.worker.stop()
        self.latest = None
        self.source_problem, self.ended, self.engine_text = "", False, ""
        self.view.clear(message)
        self.section.show_opening()
        self.restarted.emit()
        self.status.show_notice("")
        self.update_status()
        self.start(first_task)
