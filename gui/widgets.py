"""The window's frame widgets: the video with its boxes, and the status line.

They only show what they are given (frozen snapshots and strings from the GUI thread); the
controllers (:mod:`gui.controllers`) decide what to show. The side panel is :mod:`gui.panel`.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from emotion.classes import STYLES
from gui.workers import ViewFrame

NO_FACE = {  # by source kind: what the panel, the video and P say while no face is in view
    "camera": "No face found: look at the camera for a few seconds.",
    "video": "No face in the video right now.",
    "photos": "No face found in this photo.",
}


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
        self._notice_timer = QTimer(self, singleShot=True, timeout=lambda: self.set_notice(""))

    def show_notice(self, text: str, timeout_ms: int = 0) -> None:
        """A notice that stays until replaced, or for ``timeout_ms``."""
        self.set_notice(text)
        if timeout_ms:
            self._notice_timer.start(timeout_ms)
        else:
            self._notice_timer.stop()

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
