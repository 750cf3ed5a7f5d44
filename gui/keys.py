"""The window's keys, declared once: the menus' shortcuts, the toolbar, the side panel's hints,
``moodtunes --help`` and the README's keys table are all read from (or tested against) ``KEYS``.

No Qt here: ``moodtunes --help`` prints the table without loading the window. Keys are written
as Qt's portable key names (``QKeySequence("Ctrl+O")``), which are also how they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from emotion.capture import CAPTURE_SECONDS


@dataclass(frozen=True)
class KeyBinding:
    keys: tuple[str, ...]  # the first is the one hints name
    action: str  # the name of the window action it triggers (see gui.window.MENUS)
    help: str  # what it does, as --help and the README's table say it

    @property
    def key(self) -> str:
        return self.keys[0]


KEYS = (
    KeyBinding(("P",), "playlist", "make a Spotify playlist from the current mood and play it"),
    KeyBinding(("F",), "follow", "follow my mood: the music changes when a new mood holds (on / off)"),
    KeyBinding(("L",), "like", "like the playing track: saved to your library, remembered for its mood"),
    KeyBinding(("N",), "skip", "skip to the next track; the skipped one is never picked for that mood again"),
    KeyBinding(("C",), "calibrate",
               f"calibrate: hold a relaxed, neutral face for {CAPTURE_SECONDS:g} s (your resting face then reads as "
               "neutral)"),
    KeyBinding(("Space",), "pause", "pause / resume the video"),
    KeyBinding(("Ctrl+O",), "open", "open a photo or video instead of the camera"),
    KeyBinding(("Q", "Esc"), "quit", "quit"),
)


def key_of(action: str) -> str:
    """The key that triggers ``action``, as hints name it ("P")."""
    return next(binding.key for binding in KEYS if binding.action == action)


def keys_help() -> str:
    """The "keys in the window" block of ``moodtunes --help``."""
    rows = (f"  {', '.join(binding.keys):<10} {binding.help}" for binding in KEYS)
    return "\n".join(["keys in the window:", *rows])
