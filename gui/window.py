"""The moodtunes window: live video with the overlay, the mood panel, and P for a playlist."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QRectF, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QFont, QKeySequence, QPainter, QPaintEvent, QPen
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

from emotion.classes import EMOTIONS, STYLES
from emotion.cli import warn
from emotion.pipeline import EmotionPipeline, seconds_since_launch
from emotion.recognizer import EmotionRecognizer
from emotion.sources import FrameSource, Warn, open_source
from gui.workers import AnalysisWorker, EngineInfo, PlaylistWorker, ViewFrame

if TYPE_CHECKING:
    from playlist.make import PlaylistResult

CAMERA_CHOICES = range(4)
OPEN_FILTER = ("Photos and videos (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff *.mp4 *.avi *.mkv *.mov *.webm);;"
               "All files (*)")
MOOD_STYLE = "font-size: 22px; font-weight: bold; border-radius: 8px; background: {background}; color: {text};"
NO_MOOD_STYLE = MOOD_STYLE.format(background="#333", text="#ddd")


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


def make_playlist_on_first_use(*args: object, **kwargs: object) -> PlaylistResult:
    """playlist.make (spotipy, requests) loads on the first P, not at start-up: most runs never press it."""
    from playlist.make import make_playlist

    return make_playlist(*args, **kwargs)


class VideoView(QWidget):
    """The newest frame scaled to fit (aspect kept), with a box and label per face."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.frame: ViewFrame | None = None
        self.message = "Starting the camera and the emotion model..."

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
                self._banner(painter, "No face found in this photo" if analysis.photo
                             else "No face found - look at the camera")
        if self.message:
            self._banner(painter, self.message)
        painter.end()

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
    """Smoothed probabilities as bars, the current mood, and what P did."""

    def __init__(self) -> None:
        super().__init__()
        self.setFixedWidth(300)
        layout = QVBoxLayout(self)
        self.mood_label = QLabel("No face yet")
        self.mood_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mood_label.setMinimumHeight(64)
        self.mood_label.setStyleSheet(NO_MOOD_STYLE)
        self.mood_detail = QLabel("Look at the camera for a few seconds.")
        self.mood_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
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

    def show_analysis(self, frame: ViewFrame) -> None:
        analysis = frame.analysis
        mood = analysis.mood
        probabilities = mood.probabilities if mood else (
            analysis.faces[0].probabilities if analysis.faces else dict.fromkeys(EMOTIONS, 0.0))
        for name, bar in self.bars.items():
            bar.setValue(round(100 * probabilities[name]))
        if mood is None:
            self.mood_label.setText("No face")
            self.mood_label.setStyleSheet(NO_MOOD_STYLE)
            self.mood_detail.setText("Look at the camera for a few seconds.")
            return
        self.mood_label.setText(mood.label.capitalize())
        self.mood_label.setStyleSheet(MOOD_STYLE.format(background=STYLES[mood.label].colour, text="#000"))
        self.mood_detail.setText(f"{mood.confidence:.0%} confident, for {mood.held_for(analysis.timestamp):.0f} s")

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
        self._make_recognizer = make_recognizer or (lambda: EmotionRecognizer(
            options.checkpoint, device=options.device, detector=options.detector, face_model=options.face_model,
            backend=options.backend))
        self.worker: AnalysisWorker | None = None
        self.latest: ViewFrame | None = None
        self.engine_text = ""

        self.view = VideoView()
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # holds the focus so shortcuts always work
        self.panel = MoodPanel()
        central = QWidget()
        row = QHBoxLayout(central)
        row.addWidget(self.view, 1)
        row.addWidget(self.panel)
        self.setCentralWidget(central)
        # Notices (why Haar, Paused, a skipped photo, ...) on the left, always at full length; the
        # engine line takes what is left on the right (clipped, whole in its tooltip).
        # QStatusBar.showMessage would be squeezed out by the engine line instead.
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.notice)
        self.status = QLabel()
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.statusBar().addPermanentWidget(self.status, 1)
        self._notice_timer = QTimer(self, singleShot=True, timeout=self.notice.clear)

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
        video_menu.addActions(self.camera_group.actions())
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.addAction(self.playlist_action)
        toolbar.addActions(self.strategy_group.actions())
        toolbar.addSeparator()
        toolbar.addAction(self.pause_action)
        toolbar.addAction(self.quit_action)
        for button in toolbar.findChildren(QToolButton):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must pause, not press a button
        for action in (self.playlist_action, self.pause_action, self.quit_action):
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
            self.resize(1100, 640)
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
        options = self.options
        source = options.source if options.source is not None else options.camera
        make_source = self._make_source or (lambda warn: open_source(source, loop=options.loop, warn=warn))
        self.worker = AnalysisWorker(make_source, lambda: EmotionPipeline(self._make_recognizer()))
        self.worker.ready.connect(self._engine_ready)
        self.worker.frame_ready.connect(self._show_latest)
        self.worker.failed.connect(self._engine_failed)
        self.worker.warning.connect(self._warn)
        self.worker.finished.connect(self._source_ended)
        self.worker.set_paused(self.pause_action.isChecked())
        self.worker.start()

    def show_notice(self, text: str, timeout_ms: int = 0) -> None:
        """A message in the status bar; it stays until replaced, or for ``timeout_ms``."""
        self.notice.setText(text)
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
        self.status.setText(self.engine_text)
        self.status.setToolTip(self.engine_text)
        if info.note:
            self._warn(info.note)

    def _source_ended(self, kind: str) -> None:
        if kind == "photos":  # the last photo stays on screen as a still, with its analysis
            if self.options.source and Path(self.options.source).is_dir():
                self.show_notice("That was the last photo in the folder.")
        else:
            self.view.show_message("End of the video. Use --loop to replay it.")

    def _engine_failed(self, message: str) -> None:
        self.view.show_message(message)
        self.status.setText("Not running: " + message)

    def _show_latest(self) -> None:
        frame = self.worker.take_latest() if self.worker else None
        if frame is None:  # an older signal whose frame was already shown
            return
        self.latest = frame
        self.view.show_frame(frame)
        self.panel.show_analysis(frame)
        if self.options.first_face_report and frame.analysis.faces:
            self.view.repaint()  # painted, not just scheduled: that is what the user sees
            print(json.dumps({"launch_to_first_face_s": round(seconds_since_launch(), 3),
                              "backend": self.engine_text}), flush=True)
            self.options.first_face_report = False
            QTimer.singleShot(0, self.close)
        rate = f"photo {frame.analysis.photo}" if frame.fps is None else f"{frame.fps:.1f} fps"
        self.status.setText(f"{rate} · {self.engine_text}")

    def set_paused(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(paused)
        self.show_notice("Paused - press Space to resume" if paused else "")

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
        self.show_notice("")
        self.view.show_message(message)
        self.start()

    # --- playlists ----------------------------------------------------------------------
    def make_playlist(self) -> None:
        if self.playlist_worker.busy:
            self.show_notice("Already making a playlist...", 4000)
            return
        mood = self.latest.analysis.mood if self.latest else None
        if mood is None:
            self.panel.show_playlist_text("No mood yet: look at the camera for a few seconds, then press P.")
            return
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
        text = html.escape(message)
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
