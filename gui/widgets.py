"""The window's widgets: the video with its boxes, the mood panel, and the status line.

They only show what they are given (frozen snapshots and strings from the GUI thread); the
window (:mod:`gui.window`) decides what to show.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from emotion.classes import EMOTIONS, STYLES
from gui.workers import ViewFrame

MOOD_STYLE = "font-size: 22px; font-weight: bold; border-radius: 8px; background: {background}; color: {text};"
NO_MOOD_STYLE = MOOD_STYLE.format(background="#333", text="#ddd")
NO_FACE = {  # by source kind: what the panel, the video and P say while no face is in view
    "camera": "No face found: look at the camera for a few seconds.",
    "video": "No face in the video right now.",
    "photos": "No face found in this photo.",
}
CALIBRATE_HINT = "C: calibrate your neutral face."


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
            bar.setAlignment(Qt.AlignmentFlag.AlignCenter)  # some styles put the figure in the corner, on the border
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
        self.playlist_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # What P says can be long (Spotify's five setup steps): it scrolls rather than being cut off
        # below the window's edge, with its links last.
        playlist_area = QWidget()
        playlist_layout = QVBoxLayout(playlist_area)
        playlist_layout.setContentsMargins(0, 0, 0, 0)
        playlist_layout.addWidget(self.playlist_label)
        self.playlist_scroll = QScrollArea()
        self.playlist_scroll.setWidget(playlist_area)
        self.playlist_scroll.setWidgetResizable(True)
        self.playlist_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.playlist_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.playlist_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addSpacing(12)
        layout.addWidget(self.playlist_scroll, 1)

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
        playlist_layout.addWidget(self.sign_in_box)
        playlist_layout.addStretch(1)

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
