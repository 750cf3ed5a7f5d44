"""What a run is set to: the picture source and the engine, typed and checked in one place.

Every front end builds these once (the command line in :func:`emotion.cli.settings_from_args`,
the window's remembered choices in ``gui.settings``) and hands them down; nothing further down
reads an argparse ``Namespace``. Importing this module loads neither OpenCV nor a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emotion.history import SPAN_S

if TYPE_CHECKING:  # the engine loads only when a recognizer is made
    from emotion.calibration import Calibration
    from emotion.recognizer import EmotionRecognizer

# What the app asks a camera for unless told otherwise (--resolution); see the README's "Speed and memory".
DEFAULT_RESOLUTION = (640, 480)


def parse_camera_index(value: object) -> int:
    """A camera number, 0, 1, ..., from text or a number; ValueError says why not.

    OpenCV crashes the process on a negative index, so it never gets one.
    """
    try:
        index = int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a camera number (0, 1, ...), got {value!r}") from None
    if index < 0:
        raise ValueError(f"{index} is not a camera: cameras are numbered 0, 1, 2, ...")
    return index


def parse_resolution(text: str) -> tuple[int, int]:
    """A camera resolution, WIDTHxHEIGHT: 1280x720; ValueError says why not."""
    found = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not found:
        raise ValueError(f"expected WIDTHxHEIGHT, such as 1280x720; got {text!r}")
    return checked_resolution((int(found[1]), int(found[2])))


def checked_resolution(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` if a camera could give it; ValueError says why not."""
    width, height = size
    if not (64 <= width <= 7680 and 48 <= height <= 4320):
        raise ValueError(f"{width}x{height} is not a camera resolution: from 64x48 to 7680x4320")
    return width, height


def format_resolution(size: tuple[int, int]) -> str:
    return "{}x{}".format(*size)


@dataclass(frozen=True)
class SourceSettings:
    """Where the pictures come from: a file or folder (``path``), else a camera."""

    path: str | None = None  # a video, an image or a folder of images instead of the camera
    camera: int | None = None  # None: not chosen (the window then uses the one chosen last, else 0)
    loop: bool = False  # replay ``path`` from the start when it ends
    resolution: tuple[int, int] | None = None  # what to ask a camera for; None: not chosen

    def __post_init__(self) -> None:
        if self.camera is not None:
            parse_camera_index(self.camera)
        if self.resolution is not None:
            checked_resolution(self.resolution)

    @property
    def target(self) -> str | int:
        """What ``open_source`` gets: the path, else the camera, else camera 0."""
        return self.path if self.path is not None else self.camera or 0

    @property
    def camera_size(self) -> tuple[int, int]:
        """What a camera is asked for: the chosen resolution, else DEFAULT_RESOLUTION."""
        return self.resolution or DEFAULT_RESOLUTION


@dataclass(frozen=True)
class EngineSettings:
    """The model, the detector and the calibration a recognizer is made with."""

    checkpoint: str | None = None  # a shipped model's name or a .onnx/.pt file; None: the default
    device: str = "auto"
    backend: str = "auto"
    detector: str = "auto"
    face_model: str | None = None  # a YuNet .onnx file instead of the shipped one
    calibration_file: Path | None = None  # the calibration to use, and where the window's C saves one
    use_calibration: bool = True  # False: start without any calibration (--no-calibration)

    @property
    def calibration_path(self) -> Path:
        """The calibration file in use: the one given, else the config folder's."""
        from emotion.calibration import saved_calibration_path

        return self.calibration_file or saved_calibration_path()

    def load_calibration(self) -> Calibration | None:
        """The calibration file given, none without ``use_calibration``, else the saved one (if any)."""
        from emotion.calibration import Calibration

        if not self.use_calibration:
            return None
        path = self.calibration_path
        return Calibration.load(path) if self.calibration_file or path.is_file() else None

    def make_recognizer(self) -> EmotionRecognizer:
        """The EmotionRecognizer these settings ask for (loads the model: call it off the GUI thread)."""
        from emotion.recognizer import EmotionRecognizer

        return EmotionRecognizer(self.checkpoint, device=self.device, detector=self.detector,
                                 face_model=self.face_model, backend=self.backend,
                                 calibration=self.load_calibration())


@dataclass(frozen=True)
class AppSettings:
    """One run of moodtunes: its source and engine, and what only the window uses."""

    source: SourceSettings = field(default_factory=SourceSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    first_face_report: bool = False  # window: print launch-to-first-face time (JSON) and quit: a benchmark
    timeline_span_s: float = SPAN_S  # window: how far back the mood timeline reaches
    follow: bool = False  # window: the DJ follows the mood from the start (--follow)
    follow_hold_s: float | None = None  # window: --follow-hold; None: the DJ's default
    follow_gap_s: float | None = None  # window: --follow-gap; None: the DJ's default
    play_when_made: bool | None = None  # window: False with --no-play; None: as chosen last in the window
