"""What the window remembers between runs, kept in moodtunes' config folder and checked on the way in.

The file is an INI file in :func:`emotion.paths.config_dir` (``MOODTUNES_CONFIG_DIR`` moves it
with everything else moodtunes writes), not Qt's per-platform default place. A value that does
not read as what it should be (a hand-edited file, say) is one ``warning:`` line, and the
default is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

from emotion.cli import warn
from emotion.paths import config_dir
from emotion.settings import DEFAULT_RESOLUTION, format_resolution, parse_camera_index, parse_resolution
from playlist.profiles import STRATEGIES

STORE_FILENAME = "window.ini"


def window_store() -> QSettings:
    """The window's settings file in the config folder."""
    return QSettings(str(config_dir() / STORE_FILENAME), QSettings.Format.IniFormat)


def parse_strategy(text: str) -> str:
    if text not in STRATEGIES:
        raise ValueError(f"expected {' or '.join(STRATEGIES)}, got {text!r}")
    return text


@dataclass(frozen=True)
class WindowChoices:
    """The choices a person makes in the window and finds again at the next start."""

    camera: int = 0
    resolution: tuple[int, int] = DEFAULT_RESOLUTION
    strategy: str = "match"
    geometry: bytes = b""  # QMainWindow.saveGeometry(); empty: the default size

    @classmethod
    def load(cls, store: QSettings) -> WindowChoices:
        default = cls()

        def read(key: str, what: str, parse: Callable[[str], object], fallback: object, shown: str) -> object:
            value = store.value(key)
            if value is None or value == "":  # never saved
                return fallback
            try:
                return parse(str(value))  # an INI file gives text; a value set in this run keeps its type
            except ValueError as exc:
                warn(f"the window's saved {what} in {store.fileName()} is unusable ({exc}); using {shown}.")
                return fallback

        geometry = store.value("window/geometry")
        return cls(
            camera=read("video/camera", "camera", parse_camera_index, default.camera, f"camera {default.camera}"),
            resolution=read("video/resolution", "camera resolution", parse_resolution, default.resolution,
                            format_resolution(default.resolution)),
            strategy=read("playlist/strategy", "playlist strategy", parse_strategy, default.strategy,
                          default.strategy),
            geometry=geometry.data() if isinstance(geometry, QByteArray) else b"",
        )

    def save(self, store: QSettings) -> None:
        store.setValue("window/geometry", QByteArray(self.geometry))
        store.setValue("playlist/strategy", self.strategy)
        store.setValue("video/camera", self.camera)
        store.setValue("video/resolution", format_resolution(self.resolution))
        store.sync()
