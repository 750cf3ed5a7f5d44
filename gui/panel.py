"""The side panel and its sections: the mood, the calibration, what P did and what the DJ plays.

Each section belongs to one controller (gui/controllers), which tells it what to show; the
sections only show what they are given. The panel stacks them in a fixed-width column.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget

from emotion.classes import EMOTIONS, STYLES
from gui.keys import key_of
from gui.workers import ViewFrame

if TYPE_CHECKING:
    from playlist.builder import Track

MOOD_STYLE = "font-size: 22px; font-weight: bold; border-radius: 8px; background: {background}; color: {text};"
NO_MOOD_STYLE = MOOD_STYLE.format(background="#333", text="#ddd")
BAR_HEIGHT = 16  # a mood bar: its figure still fits


class Section(QWidget):
    """A part of the side panel: a column without margins, ``space_above`` pixels below the one before."""

    space_above = 0
    stretch = 0  # its share of the panel's spare height

    def __init__(self) -> None:
        super().__init__()
        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(0, 0, 0, 0)


class SidePanel(QWidget):
    """The sections, top to bottom, in a column 340 px wide: Spotify's setup steps fit it at the default size."""

    def __init__(self, sections: list[Section]) -> None:
        super().__init__()
        self.setFixedWidth(340)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)  # the window's own margins frame it
        for section in sections:
            if section.space_above:
                layout.addSpacing(section.space_above)
            layout.addWidget(section, section.stretch)
        if not any(section.stretch for section in sections):
            layout.addStretch(1)


class MoodSection(Section):
    """The current mood in words and colour, and the smoothed probabilities as bars."""

    def __init__(self) -> None:
        super().__init__()
        self.mood_label = QLabel()
        self.mood_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mood_label.setMinimumHeight(52)
        self.mood_detail = QLabel()
        self.mood_detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mood_detail.setWordWrap(True)
        self.column.addWidget(self.mood_label)
        self.column.addWidget(self.mood_detail)
        # Compact bars: below them, Spotify's setup steps must fit the default window without scrolling.
        grid = QGridLayout()
        grid.setVerticalSpacing(2)
        self.bars: dict[str, QProgressBar] = {}
        for row, name in enumerate(EMOTIONS):
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setFormat("%p%")
            bar.setAlignment(Qt.AlignmentFlag.AlignCenter)  # some styles put the figure in the corner, on the border
            bar.setStyleSheet(f"QProgressBar::chunk {{ background: {STYLES[name].colour}; }}")
            bar.setFixedHeight(BAR_HEIGHT)
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(bar, row, 1)
            self.bars[name] = bar
        self.column.addLayout(grid)
        self.show_opening()

    def show_analysis(self, frame: ViewFrame, no_face_text: str) -> None:
        analysis = frame.analysis
        mood = analysis.mood
        probabilities = mood.probabilities if mood else (
            analysis.faces[0].probabilities if analysis.faces else dict.fromkeys(EMOTIONS, 0.0))
        for name, bar in self.bars.items():
            bar.setValue(round(100 * probabilities[name]))
        if mood is None:
            self._show_no_mood("No face", no_face_text)
            return
        self.mood_label.setText(mood.label.capitalize())
        self.mood_label.setStyleSheet(MOOD_STYLE.format(background=STYLES[mood.label].colour, text="#000"))
        held = "" if analysis.photo else f", for {mood.held_for(analysis.timestamp):.0f} s"  # a still holds nothing
        self.mood_detail.setText(f"{mood.confidence:.0%} confident{held}")

    def show_problem(self, short: str) -> None:
        """Nothing is analysed: ``short`` names why ("No camera"); the video says it in full."""
        self._show_no_mood("Not running", short if short != "Not running" else "")
        self._clear_bars()

    def show_opening(self) -> None:
        """A source is opening: no mood yet, and none of the last source's."""
        self._show_no_mood("No mood yet", "Starting…")
        self._clear_bars()

    def _clear_bars(self) -> None:
        for bar in self.bars.values():
            bar.setValue(0)

    def _show_no_mood(self, title: str, why: str) -> None:
        self.mood_label.setText(title)
        self.mood_label.setStyleSheet(NO_MOOD_STYLE)
        self.mood_detail.setText(why)


class CalibrationSection(Section):
    """Whether the person's neutral face is in use, and the latest capture (C): its progress while it
    runs, then its one-line result."""

    space_above = 4

    def __init__(self) -> None:
        super().__init__()
        self.state = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.hide()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()
        for widget in (self.state, self.progress, self.message):
            self.column.addWidget(widget)

    def show_calibrated(self, calibrated: bool) -> None:
        self.state.setText("Calibrated: your neutral face reads as neutral." if calibrated
                           else f"Not calibrated. {key_of('calibrate')}: calibrate your neutral face.")

    def show_capture(self, message: str, progress: float) -> None:
        self.progress.setValue(round(100 * progress))
        self.progress.show()
        self._show_message(message)

    def show_result(self, message: str) -> None:
        self.progress.hide()
        self._show_message(message)

    def _show_message(self, message: str) -> None:
        self.message.setText(message)
        self.message.setVisible(bool(message))  # no empty line's height taken from the playlist's steps


class PlaylistSection(Section):
    """What P did (progress, the playlist's link, or what to set up), and Spotify's sign-in while it waits."""

    space_above = 8
    stretch = 1

    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel(f"Press {key_of('playlist')} to turn your mood into a Spotify playlist and play it.")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setOpenExternalLinks(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.label.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the window's keys must reach the window
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # What P says can be long (Spotify's setup steps): it scrolls rather than being cut off
        # below the window's edge, with its links last.
        area = QWidget()
        area_column = QVBoxLayout(area)
        area_column.setContentsMargins(0, 0, 0, 0)
        area_column.addWidget(self.label)
        self.scroll = QScrollArea()
        self.scroll.setWidget(area)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.column.addWidget(self.scroll)
        self.sign_in_box = self._sign_in_box()
        area_column.addWidget(self.sign_in_box)
        area_column.addStretch(1)

    def _sign_in_box(self) -> QWidget:
        """While Spotify's sign-in waits: its link (for when no browser opened) and a way out."""
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.sign_in_link = QLabel()
        self.sign_in_link.setWordWrap(True)
        self.sign_in_link.setTextFormat(Qt.TextFormat.RichText)
        self.sign_in_link.setOpenExternalLinks(True)
        self.sign_in_link.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                  | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.sign_in_link.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # click, select, Ctrl+C
        self.cancel_button = QPushButton("Cancel sign-in")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        column.addWidget(self.sign_in_link)
        column.addWidget(self.cancel_button)
        box.hide()
        return box

    def show_text(self, text: str) -> None:
        self.label.setText(text)

    def show_sign_in(self, url: str | None) -> None:
        """The sign-in link and Cancel while Spotify's sign-in waits; ``None`` hides them."""
        if url is None:
            self.sign_in_box.hide()
            return
        self.sign_in_link.setText(f"If no browser opened, open this link to sign in to Spotify:<br>"
                                  f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        self.sign_in_box.show()


class DJSection(Section):
    """The DJ: whether it follows the mood, the track playing (title, artist, link; the mood it was picked
    for; the device), its last few actions with their times, and its latest problem in one line."""

    space_above = 4

    def __init__(self) -> None:
        super().__init__()
        self.following = QLabel()
        self.following.setWordWrap(True)
        self.now_playing = self._rich_label()
        self.problem = self._rich_label()
        self.problem.setStyleSheet("color: #e57373;")
        self.sign_in_button = QPushButton("Sign in to Spotify")
        self.sign_in_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the window's keys must reach the window
        self.sign_in_button.hide()
        self.recent = QLabel()
        self.recent.setWordWrap(True)
        self.recent.setStyleSheet("color: #888;")
        for widget in (self.following, self.now_playing, self.problem, self.sign_in_button, self.recent):
            self.column.addWidget(widget)
        self.show_following(False, None, 0.0, 0.0)
        self.show_track(None, None, None)
        self.show_problem("")
        self.show_recent([])

    @staticmethod
    def _rich_label() -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setOpenExternalLinks(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return label

    def show_following(self, on: bool, holding: str | None, held_s: float, hold_s: float) -> None:
        key = key_of("follow")
        if not on:
            self.following.setText(f"DJ: not following your mood ({key}: follow it).")
        elif holding is None:
            self.following.setText(f"DJ: following your mood ({key}: stop).")
        elif held_s >= hold_s:
            self.following.setText(f"DJ: following your mood ({key}: stop); {holding} has held {held_s:.0f} s.")
        else:
            self.following.setText(f"DJ: following your mood ({key}: stop); {holding} for {held_s:.0f} of "
                                   f"{hold_s:g} s.")

    def show_track(self, track: Track | None, mood: str | None, device: str | None) -> None:
        """The playing track; none known: no line (the playlist section already says that P plays one)."""
        self.now_playing.setVisible(track is not None)
        if track is None:
            return
        def text(words: str) -> str:
            return html.escape(words, quote=False)

        picked = f"for <b>{text(mood)}</b>" if mood else "not picked by moodtunes"
        where = f" · on {text(device)}" if device else ""
        link = f' · <a href="{html.escape(track.url)}">open</a>' if track.url else ""
        self.now_playing.setText(f"♪ <b>{text(track.name)}</b><br>{text(', '.join(track.artists))}"
                                 f"{link}<br>{picked}{where} · {key_of('like')}: like, {key_of('skip')}: skip")

    def show_problem(self, text: str, sign_in: bool = False) -> None:
        """The DJ's latest problem as rich text ("" when there is none), with a sign-in button when that fixes it."""
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
        self.sign_in_button.setVisible(sign_in)

    def show_recent(self, lines: list[str]) -> None:
        self.recent.setText("\n".join(lines))
        self.recent.setVisible(bool(lines))
