"""The mood you can watch: a strip of the last few minutes' smoothed mood, and the session's summary.

Both are drawn on the GUI thread from :class:`~emotion.history.MoodHistory`, which the window
feeds from the frozen snapshots it shows: the analysis thread never sees them.
"""

from __future__ import annotations

import html
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QSizePolicy, QVBoxLayout, QWidget

from emotion.classes import STYLES
from emotion.history import MAX_SEGMENTS, Mark, MoodHistory

BACKGROUND = QColor("#111")
EMPTY_STRIP = QColor("#2b2b2b")  # no mood: no face, paused, or before the session
MARK_COLOUR = QColor("#ffffff")
MUSIC_COLOUR = QColor("#1ed760")  # Spotify's green: where the DJ changed the music (played or queued)
AXIS_COLOUR = QColor("#bbbbbb")
TICK_STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
STRIP_HEIGHT = 18
MARK_HEAD = 6  # the triangle above the strip that says "a playlist was made here"


def format_duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def time_ticks(span: float, max_gaps: int = 6) -> list[tuple[float, str]]:
    """The axis' ticks as (seconds before now, label), oldest first: -5 min, -4 min, ..., now."""
    step = next((s for s in TICK_STEPS_S if span / s <= max_gaps), TICK_STEPS_S[-1])
    ages = range(int(span // step) * step, -1, -step)
    return [(float(age), "now" if age == 0 else f"-{age // 60} min" if age % 60 == 0 else f"-{age} s")
            for age in ages]


class MoodTimeline(QWidget):
    """The last ``history.span`` seconds: each mood in its colour, a white mark per playlist, a green mark
    (a line with a round head) where the DJ changed the music, and a time axis.

    "now" is the right edge and moves on with ``clock`` (the clock the history is fed on),
    so a pause or a lost camera shows as a gap growing from the right.
    """

    def __init__(self, history: MoodHistory, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.history, self.clock = history, clock
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(MARK_HEAD + STRIP_HEIGHT + 6 + self.fontMetrics().height() + 4)
        self.setToolTip(f"Your mood over the last {format_duration(history.span)}; "
                        "a white mark for each playlist made, a green one where the DJ changed the music.")
        self.music: deque[Mark] = deque(maxlen=MAX_SEGMENTS)  # the DJ's changes, on ``clock``
        # The strip moves by a pixel every span / width seconds (about 0.3 s for 5 minutes on
        # 1000 px); frames arriving faster than that need no repaint of their own.
        self._timer = QTimer(self, interval=250, timeout=self.update)
        self._timer.start()

    def mark_music(self, moment: float, label: str) -> None:
        """The DJ changed the music at ``moment`` (on ``clock``) for the mood ``label``."""
        self.music.append(Mark(moment, label))
        while self.music and self.music[0].time < moment - self.history.span:
            self.music.popleft()
        self.update()

    def strip_rect(self) -> QRectF:
        """Where the strip is drawn, inside margins that leave room for the first and last tick labels."""
        metrics = self.fontMetrics()
        left = metrics.horizontalAdvance(time_ticks(self.history.span)[0][1]) / 2 + 4
        right = metrics.horizontalAdvance("now") / 2 + 4
        return QRectF(left, MARK_HEAD, max(1.0, self.width() - left - right), STRIP_HEIGHT)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's naming)
        span, now = self.history.span, self.clock()
        strip = self.strip_rect()

        def x_at(moment: float) -> float:
            return strip.right() - (now - moment) / span * strip.width()

        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        painter.fillRect(strip, EMPTY_STRIP)
        for run in self.history.segments(since=now - span):
            left = max(strip.left(), x_at(run.start))
            painter.fillRect(QRectF(left, strip.top(), min(strip.right(), x_at(run.end)) - left, strip.height()),
                             QColor(STYLES[run.label].colour))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(MARK_COLOUR, 2))
        painter.setBrush(MARK_COLOUR)
        for mark in self.history.marks(since=now - span):
            x = x_at(mark.time)
            painter.drawLine(QPointF(x, strip.top()), QPointF(x, strip.bottom()))
            painter.drawPolygon(QPolygonF([QPointF(x - 4, 0), QPointF(x + 4, 0), QPointF(x, MARK_HEAD)]))
        painter.setPen(QPen(MUSIC_COLOUR, 2))
        painter.setBrush(MUSIC_COLOUR)
        for mark in self.music:
            if mark.time < now - span:
                continue
            x = x_at(mark.time)
            painter.drawLine(QPointF(x, strip.top()), QPointF(x, strip.bottom()))
            painter.drawEllipse(QPointF(x, MARK_HEAD / 2), MARK_HEAD / 2, MARK_HEAD / 2)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(AXIS_COLOUR)
        metrics = painter.fontMetrics()
        for age, label in time_ticks(span):
            x = x_at(now - age)
            painter.drawLine(QPointF(x, strip.bottom() + 1), QPointF(x, strip.bottom() + 5))
            width = metrics.horizontalAdvance(label)
            painter.drawText(QRectF(x - width / 2 - 2, strip.bottom() + 5, width + 4, metrics.height()),
                             Qt.AlignmentFlag.AlignCenter, label)
        painter.end()


def summary_html(history: MoodHistory) -> str:
    """The share of time in each mood, most frequent first, as the summary dialog shows it."""
    seconds = history.seconds
    if not seconds:
        return "No mood seen yet: a face needs to be in view for a moment."
    rows = "".join(
        f'<tr><td style="background: {STYLES[label].colour}">&nbsp;&nbsp;&nbsp;&nbsp;</td>'
        f"<td>&nbsp;{html.escape(label.capitalize())}</td><td align='right'>&nbsp;&nbsp;{share:.0%}</td>"
        f"<td align='right'>&nbsp;&nbsp;{format_duration(seconds[label])}</td></tr>"
        for label, share in sorted(history.share().items(), key=lambda item: -item[1])
    )
    return (f"<p>A mood was seen for <b>{format_duration(sum(seconds.values()))}</b> this session.</p>"
            f"<table cellspacing='4'>{rows}</table>")


class SessionSummary(QDialog):
    """The share of time in each mood since the window opened (View → Session summary)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("Session summary")
        layout = QVBoxLayout(self)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, rejected=self.reject)
        layout.addWidget(buttons)

    def show_history(self, history: MoodHistory) -> None:
        self.text.setText(summary_html(history))
        self.show()
        self.raise_()
