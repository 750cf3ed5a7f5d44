"""The window's frame widgets: the video with its boxes, and the status line.

They only show what they are given (frozen snapshots and strings from the GUI thread); the
controllers (:mod:`gui.controllers`) decide what to show. The side panel is :mod:`gui.panel`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, QSizeF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from emotion.classes import STYLES
from gui.workers import ViewFrame

NO_FACE = {  # by source kind: what the panel, the video and P say while no face is in view
    "camera": "No face found: look at the camera for a few seconds.",
    "video": "No face in the video right now.",
    "photos": "No face found in this photo.",
}
STARTING = {"camera": "Starting camera…", "file": "Opening {name}…"}  # until the first frame arrives
BANNER_PAD = 11  # around a banner's text


def place_labels(boxes: Sequence[QRectF], sizes: Sequence[QSizeF], area: QRectF) -> list[QRectF | None]:
    """Where each face's label goes: above its box, else below it, else inside its top edge, else the
    nearest free place; always inside ``area`` and never over another label (``None``: no room left).

    A place that covers no other face's box is preferred; the labels are placed in the order given.
    """
    placed: list[QRectF] = []
    out: list[QRectF | None] = []
    for box, size in zip(boxes, sizes, strict=True):
        w, h = min(size.width(), area.width()), size.height()
        if h > area.height():
            out.append(None)
            continue
        wanted = [QPointF(box.left(), box.top() - h), QPointF(box.left(), box.bottom()), QPointF(box.left(), box.top())]
        # Then ever further from the box, up and down in steps of a label's height, and along the row.
        for step in range(1, int(area.height() / h) + 2):
            for dy in (-step * h, step * h):
                wanted += [QPointF(box.left(), box.top() - h + dy), QPointF(box.right() - w, box.top() - h + dy)]
        others = [b for b in boxes if b is not box]
        choice = None
        for avoid_boxes in (True, False):
            for point in wanted:
                rect = _inside(QRectF(point, QSizeF(w, h)), area)
                if any(rect.intersects(p) for p in placed):
                    continue
                if avoid_boxes and any(rect.intersects(b) for b in others):
                    continue
                choice = rect
                break
            if choice is not None:
                break
        if choice is None:  # a crowd: the first free place, row by row
            choice = next((rect for rect in _grid(area, w, h) if not any(rect.intersects(p) for p in placed)), None)
        if choice is not None:
            placed.append(choice)
        out.append(choice)
    return out


def _inside(rect: QRectF, area: QRectF) -> QRectF:
    """``rect`` moved (not resized) to lie inside ``area``."""
    x = min(max(rect.left(), area.left()), area.right() - rect.width())
    y = min(max(rect.top(), area.top()), area.bottom() - rect.height())
    return QRectF(x, y, rect.width(), rect.height())


def _grid(area: QRectF, w: float, h: float) -> Iterator[QRectF]:
    y = area.top()
    while y + h <= area.bottom():
        x = area.left()
        while x + w <= area.right():
            yield QRectF(x, y, w, h)
            x += 4
        y += 4


def banner_strip(heights: Sequence[float], area: QRectF, faces: Sequence[QRectF]) -> list[QRectF]:
    """Full-width bands of ``heights`` stacked at the top of ``area``, or at its bottom when that covers less
    of the faces (none, as a rule): a banner never hides the face it talks about."""
    total = sum(heights)

    def stacked(top: float) -> list[QRectF]:
        bands, y = [], top
        for height in heights:
            bands.append(QRectF(area.left(), y, area.width(), height))
            y += height
        return bands

    def covered(top: float) -> float:
        band = QRectF(area.left(), top, area.width(), total)
        return sum(_area(band.intersected(face)) for face in faces)

    top, bottom = area.top(), area.bottom() - total
    return stacked(top if covered(top) <= covered(bottom) else bottom)


def _area(rect: QRectF) -> float:
    return max(0.0, rect.width()) * max(0.0, rect.height())


class VideoView(QWidget):
    """The newest frame scaled to fit (aspect kept), with a box and label per face.

    Banners (the calibration's progress, the end of a video, no face) lie in a band at the top or
    the bottom of the picture, whichever has no face in it. A message without a picture (starting,
    no camera) is the only thing shown, in the middle: it is the one place that says it in full.
    """

    LABEL_PAD = 6  # around a label's text, each way

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.frame: ViewFrame | None = None
        self.message = STARTING["camera"]
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

    def clear(self, message: str) -> None:
        """Another source opens: the old picture and its boxes go, ``message`` says what happens."""
        self.frame, self.capture = None, None
        self.show_message(message)

    def image_rect(self) -> QRectF:
        """Where the frame is drawn: as large as fits, centred, aspect ratio kept."""
        image = self.frame.image
        scale = min(self.width() / image.width(), self.height() / image.height())
        w, h = image.width() * scale, image.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def face_rects(self) -> list[QRectF]:
        """Each face's box as drawn, in widget pixels."""
        target = self.image_rect()
        scale = target.width() / self.frame.image.width()
        return [QRectF(target.x() + x * scale, target.y() + y * scale, w * scale, h * scale)
                for x, y, w, h in (face.box for face in self.frame.analysis.faces)]

    def label_font(self) -> QFont:
        scale = self.image_rect().width() / self.frame.image.width()
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, 11 * min(1.5, scale)))
        font.setBold(True)
        return font

    def label_layout(self) -> list[tuple[str, QRectF | None]]:
        """Each face's label text and where it is drawn (see :func:`place_labels`)."""
        metrics = QFontMetricsF(self.label_font())
        texts = [f"{face.label} {face.confidence:.0%}" for face in self.frame.analysis.faces]
        sizes = [QSizeF(metrics.horizontalAdvance(text) + 2 * self.LABEL_PAD, metrics.height() + self.LABEL_PAD)
                 for text in texts]
        return list(zip(texts, place_labels(self.face_rects(), sizes, self.image_rect()), strict=True))

    def banners(self) -> list[tuple[str, QRectF]]:
        """The banners on the picture and their bands: the calibration's first, then the message or no face."""
        texts = []
        if self.capture is not None:
            texts.append(self.capture[0])
        if self.message:
            texts.append(self.message)
        elif not self.frame.analysis.faces:
            texts.append(self.no_face_text)
        area = self.image_rect()
        metrics = QFontMetricsF(self.banner_font())
        heights = [metrics.boundingRect(QRectF(0, 0, area.width() - 2 * BANNER_PAD, 10_000),
                                        int(Qt.TextFlag.TextWordWrap), text).height() + 2 * BANNER_PAD
                   for text in texts]
        return list(zip(texts, banner_strip(heights, area, self.face_rects() + [
            rect for _text, rect in self.label_layout() if rect is not None]), strict=True))

    def banner_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSize(13)
        font.setBold(True)
        return font

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's naming)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#111"))
        if self.frame is None:
            if self.message:
                self._centred(painter, self.message)
            painter.end()
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self.image_rect(), self.frame.image)
        faces = self.frame.analysis.faces  # frozen snapshots: box, label and confidence of this very frame
        for face, rect in zip(faces, self.face_rects(), strict=True):
            painter.setPen(QPen(QColor(STYLES[face.label].colour), 3))
            painter.drawRect(rect)
        painter.setFont(self.label_font())
        for face, (text, tag) in zip(faces, self.label_layout(), strict=True):
            if tag is None:  # no room left in a crowd: the box still shows the face
                continue
            painter.fillRect(tag, QColor(STYLES[face.label].colour))
            painter.setPen(QColor("#000"))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
        painter.setFont(self.banner_font())
        for text, band in self.banners():
            painter.fillRect(band, QColor(0, 0, 0, 190))
            if self.capture is not None and text == self.capture[0]:
                progress = QRectF(band.left(), band.bottom() - 6, band.width() * self.capture[1], 6)
                painter.fillRect(progress, QColor(STYLES["neutral"].colour))
            painter.setPen(QColor("#fff"))
            painter.drawText(band.adjusted(BANNER_PAD, 0, -BANNER_PAD, 0),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
        painter.end()

    def _centred(self, painter: QPainter, text: str) -> None:
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
