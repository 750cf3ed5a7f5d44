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

from PySide6.QtCore import QByteArray, QRect, QRectF, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QFont,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from emotion.calibration import CAPTURE_SECONDS, CalibrationError, CalibrationStatus, saved_calibration_path
from emotion.classes import EMOTIONS, STYLES
from emotion.cli import recognizer_from_args, warn
from emotion.history import SPAN_S, MoodHistory
from emotion.pipeline import EmotionPipeline, seconds_since_launch
from emotion.recognizer import EmotionRecognizer
from emotion.sources import CameraSource, Frame, FrameSource, SourceError, Warn, open_source
from gui.timeline import MoodTimeline, SessionSummary
from gui.workers import AnalysisWorker, EngineInfo, PlaylistWorker, ViewFrame

if TYPE_CHECKING:
    from playlist.make import PlaylistResult

CAMERA_CHOICES = range(4)
OPEN_FILTER = ("Photos and videos (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff *.mp4 *.avi *.mkv *.mov *.webm);;"
               "All files (*)")
MOOD_STYLE = "font-size: 22px; font-weight: bold; border-radius: 8px; background: {background}; color: {text};"
NO_MOOD_STYLE = MOOD_STYLE.format(background="#333", text="#ddd")
# The window's own ways to a picture, where the command line would name --camera N / --source FILE.
OTHER_SOURCE = "Choose a camera in Video → Camera N, or open a photo or video with File → Open… (Ctrl+O)."
NO_FACE = {  # by source kind: what the panel, the video and P say while no face is in view
    "camera": "No face found: look at the camera for a few seconds.",
    "video": "No face in the video right now.",
    "photos": "No face found in this photo.",
}
CALIBRATE_HINT = "C: calibrate your neutral face."
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


class WindowCamera(CameraSource):
    """A camera whose problems name the window's menus instead of the command line's --camera N."""

    def __init__(self, index: int) -> None:
        try:
            super().__init__(index)
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


def delete_calibration(path: Path) -> str:
    """Delete the calibration file at ``path``; why it could not be, or ""."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        return f"The calibration {path} could not be deleted ({exc.strerror or exc}): delete it yourself."
    return ""


def sentence(note: str) -> str:
    """A note (the engine's start lowercase, without a full stop) as a sentence of a notice."""
    return note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")


def linkified(text: str) -> str:
    """``text`` as rich text, with every web address a link (the setup steps name Spotify's dashboard)."""
    return re.sub(r"https?://[^\s<>\"]+[^\s<>\".,;:)]",
                  lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html.escape(text, quote=False))


def make_playlist_on_first_use(*args: object, **kwargs: object) -> PlaylistResult:
    """playlist.make (spotipy, requests) loads on the first P, not at start-up: most runs never press it."""
    from playlist.make import make_playlist

    return make_playlist(*args, **kwargs)


class VideoView(QWidget):
    """The newest frame scaled to fit (aspect kept), with a box and label per face.

    While a calibration captures, a banner at the top says what to do and how far it has got:
    that is where the person looks.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.frame: ViewFrame | None = None
        self.message = "Starting the camera and the emotion model..."
        self.no_face_text = NO_FACE["camera"]
        self.capture: tuple[str, float] | None = None  # the calibration's message and progress (0..1)

    def show_capture(self, message: str | None, progress: float = 0.0) -> None:
        """The calibration's banner; ``None`` removes it."""
        self.capture = None if message is None else (message, progress)
        self.update()

    def show_frame(self, frame: ViewFrame) -> None:
        self.frame, self.message = frame, ""
        self.update()

    def show_message(self, message: str) -> None:
        self.message = message
        self.update()

    def image_rect(self) -> QRectF:
        """Where the frame is drawn: as large as fits, centred, aspect ratio kept."""
        image = self.frame.image
        scale = min(self.width() / image.width(), self.height() / image.height())
        w, h = image.width() * scale, image.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's naming)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#111"))
        if self.frame is not None:
            target = self.image_rect()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self.frame.image)
            scale = target.width() / self.frame.image.width()
            font = QFont(self.font())
            font.setPointSizeF(max(9.0, 11 * min(1.5, scale)))
            font.setBold(True)
            painter.setFont(font)
            analysis = self.frame.analysis
            for face in analysis.faces:  # frozen snapshots: box, label and confidence of this very frame
                x, y, w, h = face.box
                rect = QRectF(target.x() + x * scale, target.y() + y * scale, w * scale, h * scale)
                colour = QColor(STYLES[face.label].colour)
                painter.setPen(QPen(colour, 3))
                painter.drawRect(rect)
                text = f"{face.label} {face.confidence:.0%}"
                metrics = painter.fontMetrics()
                tag = QRectF(rect.x(), rect.y() - metrics.height() - 6, metrics.horizontalAdvance(text) + 12,
                             metrics.height() + 6)
                if tag.y() < target.y():
                    tag.moveTop(rect.y())
                painter.fillRect(tag, colour)
                painter.setPen(QColor("#000"))
                painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
            if not analysis.faces and not self.message:
                self._banner(painter, self.no_face_text)
        if self.message:
            self._banner(painter, self.message)
        if self.capture is not None:
            self._capture_banner(painter, *self.capture)
        painter.end()

    def _capture_banner(self, painter: QPainter, message: str, progress: float) -> None:
        font = QFont(self.font())
        font.setPointSize(13)
        font.setBold(True)
        painter.setFont(font)
        height = painter.fontMetrics().height() + 22
        band = QRectF(0, 0, self.width(), height)
        painter.fillRect(band, QColor(0, 0, 0, 190))
        painter.fillRect(QRectF(0, height - 6, self.width() * progress, 6), QColor(STYLES["neutral"].colour))
        painter.setPen(QColor("#fff"))
        painter.drawText(band.adjusted(12, 0, -12, -6), Qt.AlignmentFlag.AlignCenter, message)

    def _banner(self, painter: QPainter, text: str) -> None:
        rect = self.rect().adjusted(24, 24, -24, -24)
        painter.setPen(QColor("#fff"))
        font = QFont(self.font())
        font.setPointSize(13)
        painter.setFont(font)
        bounds = painter.boundingRect(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
        painter.fillRect(bounds.adjusted(-14, -10, 14, 10), QColor(0, 0, 0, 170))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)


class MoodPanel(QWidget):
    """Smoothed probabilities as bars, the current mood, the calibration, and what P did."""

    def __init__(self) -> None:
        super().__init__()
        self.setFixedWidth(300)
        layout = QVBoxLayout(self)
        self.mood_label = QLabel("No face yet")
        self.mood_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mood_label.setMinimumHeight(64)
        self.mood_label.setStyleSheet(NO_MOOD_STYLE)
        self.mood_detail = QLabel(NO_FACE["camera"])
        self.mood_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mood_detail.setWordWrap(True)
        layout.addWidget(self.mood_label)
        layout.addWidget(self.mood_detail)

        grid = QGridLayout()
        self.bars: dict[str, QProgressBar] = {}
        for row, name in enumerate(EMOTIONS):
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setFormat("%p%")
            bar.setStyleSheet(f"QProgressBar::chunk {{ background: {STYLES[name].colour}; }}")
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(bar, row, 1)
            self.bars[name] = bar
        layout.addLayout(grid)

        # Whether the person's neutral face is in use, and the latest capture (C): its
        # progress while it runs, then its one-line result.
        self.calibration_state = QLabel()
        self.calibration_progress = QProgressBar()
        self.calibration_progress.setRange(0, 100)
        self.calibration_progress.setTextVisible(False)
        self.calibration_progress.setMaximumHeight(8)
        self.calibration_progress.hide()
        self.calibration_message = QLabel()
        self.calibration_message.setWordWrap(True)
        layout.addSpacing(8)
        layout.addWidget(self.calibration_state)
        layout.addWidget(self.calibration_progress)
        layout.addWidget(self.calibration_message)

        self.playlist_label = QLabel("Press P to turn your mood into a Spotify playlist.")
        self.playlist_label.setWordWrap(True)
        self.playlist_label.setTextFormat(Qt.TextFormat.RichText)
        self.playlist_label.setOpenExternalLinks(True)
        self.playlist_label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.playlist_label.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # P, Q and Space must reach the window
        layout.addSpacing(12)
        layout.addWidget(self.playlist_label)

        # While Spotify's sign-in waits: its link (for when no browser opened) and a way out.
        self.sign_in_box = QWidget()
        box = QVBoxLayout(self.sign_in_box)
        box.setContentsMargins(0, 0, 0, 0)
        self.sign_in_link = QLabel()
        self.sign_in_link.setWordWrap(True)
        self.sign_in_link.setTextFormat(Qt.TextFormat.RichText)
        self.sign_in_link.setOpenExternalLinks(True)
        self.sign_in_link.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                  | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.sign_in_link.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # click, select, Ctrl+C
        self.cancel_button = QPushButton("Cancel sign-in")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box.addWidget(self.sign_in_link)
        box.addWidget(self.cancel_button)
        self.sign_in_box.hide()
        layout.addWidget(self.sign_in_box)
        layout.addStretch(1)

    def show_analysis(self, frame: ViewFrame, no_face_text: str) -> None:
        analysis = frame.analysis
        mood = analysis.mood
        probabilities = mood.probabilities if mood else (
            analysis.faces[0].probabilities if analysis.faces else dict.fromkeys(EMOTIONS, 0.0))
        for name, bar in self.bars.items():
            bar.setValue(round(100 * probabilities[name]))
        self.calibration_state.setText("Calibrated: your neutral face reads as neutral." if analysis.calibrated
                                       else f"Not calibrated. {CALIBRATE_HINT}")
        if mood is None:
            self._show_no_mood("No face", no_face_text)
            return
        self.mood_label.setText(mood.label.capitalize())
        self.mood_label.setStyleSheet(MOOD_STYLE.format(background=STYLES[mood.label].colour, text="#000"))
        held = "" if analysis.photo else f", for {mood.held_for(analysis.timestamp):.0f} s"  # a still holds nothing
        self.mood_detail.setText(f"{mood.confidence:.0%} confident{held}")

    def show_problem(self, message: str) -> None:
        """Nothing is analysed (no camera, say): ``message`` says why and what to do."""
        self._show_no_mood("Not running", message)
        for bar in self.bars.values():
            bar.setValue(0)

    def _show_no_mood(self, title: str, why: str) -> None:
        self.mood_label.setText(title)
        self.mood_label.setStyleSheet(NO_MOOD_STYLE)
        self.mood_detail.setText(why)

    def show_capture(self, message: str, progress: float) -> None:
        self.calibration_progress.setValue(round(100 * progress))
        self.calibration_progress.show()
        self.calibration_message.setText(message)

    def show_calibration_result(self, message: str) -> None:
        self.calibration_progress.hide()
        self.calibration_message.setText(message)

    def show_playlist_text(self, text: str) -> None:
        self.playlist_label.setText(text)

    def show_sign_in(self, url: str | None) -> None:
        """The sign-in link and Cancel while Spotify's sign-in waits; ``None`` hides them."""
        if url is None:
            self.sign_in_box.hide()
            return
        self.sign_in_link.setText(f"If no browser opened, open this link to sign in to Spotify:<br>"
                                  f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        self.sign_in_box.show()


class ElidedLabel(QLabel):
    """One line that shows as much of its text as fits, cut with "…"; the whole text is in its tooltip."""

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's naming)
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's naming)
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, self.alignment(), text)
        painter.end()


class StatusLine(QWidget):
    """The status bar's contents: a notice on the left, the frame rate and engine line on the right.

    A notice (why Haar, Paused, a skipped photo, ...) is never cut: it takes the room it needs and
    wraps onto more lines when the bar is too narrow, while the engine line gives way (shortened
    with "…", whole in its tooltip) down to ``STATUS_SHARE`` of the width. The two never overlap:
    QStatusBar's own layout let a long notice run over the engine line.
    """

    GAP = 16
    STATUS_SHARE = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.notice = QLabel(self)
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.status = ElidedLabel(self)
        self.status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._height = self.fontMetrics().height()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's naming)
        return QSize(400, self._height)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's naming)
        return QSize(100, self._height)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self._arrange()

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self._arrange()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's naming)
        self._arrange()

    def _arrange(self) -> None:
        width, metrics = self.width(), self.fontMetrics()
        status_width = metrics.horizontalAdvance(self.status.text()) + 2
        height = metrics.height()
        notice_width = 0
        if self.notice.text():
            notice_full = metrics.horizontalAdvance(self.notice.text()) + 2
            status_width = min(status_width, max(width - notice_full - self.GAP, int(width * self.STATUS_SHARE)))
            notice_width = max(1, width - status_width - self.GAP)
            height = max(height, self.notice.heightForWidth(notice_width))
        status_width = min(status_width, width)
        self.notice.setGeometry(QRect(0, 0, notice_width, max(height, self.height())))
        self.status.setGeometry(QRect(width - status_width, 0, status_width, max(height, self.height())))
        if height != self._height:  # the bar grows to show a wrapped notice whole, and shrinks back
            self._height = height
            self.updateGeometry()


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

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("playlist/strategy", self.strategy)
        if self.options.source is None:
            self.settings.setValue("video/camera", self.options.camera)
        self.settings.sync()

    # --- the engine ---------------------------------------------------------------------
    def start(self) -> None:
        """Start capture and inference (model loading happens on the worker thread too)."""
        self.view.setFocus()
        source, camera, loop = self.options.source, self.options.camera, self.options.loop

        def open_for_window(warn: Warn) -> FrameSource:  # on the analysis thread
            return WindowCamera(camera) if source is None else open_source(source, loop=loop, warn=warn)

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
                problem = delete_calibration(path)  # again: a capture that ended just before may have saved
                if problem:
                    worker.warning.emit(problem)

            worker.submit(forget)
        problem = delete_calibration(path)  # now, too: a paused or ended source runs no task
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
