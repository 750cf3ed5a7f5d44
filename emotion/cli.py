"""The command-line layer every front end shares: argument builders, the one conversion of the
parsed options into typed settings, and the one printer of ``warning:`` and ``error:`` lines.

``main.py`` (the app and its subcommands, ``serve`` included), ``playlist/cli.py`` and the
``python -m training.x`` scripts build their parsers and report problems through here, so an
option reads and fails the same way everywhere. Importing this module loads neither OpenCV nor
a model: the app sets OpenCV's process-wide settings first (``main.configure_process``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from emotion.device import device_name
from emotion.errors import MoodtunesError
from emotion.settings import (
    DEFAULT_RESOLUTION,
    AppSettings,
    EngineSettings,
    SourceSettings,
    parse_camera_index,
    parse_resolution,
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong and where to look, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def warn(message: str) -> None:
    """A problem that does not stop the run, as one line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    """A problem that stops the run, as one line on stderr (the caller exits with status 2)."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def frame_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of frames, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (all frames) or a positive number of frames")
    return value


def camera_index(text: str) -> int:
    """A camera number: 0, 1, ... (see :func:`emotion.settings.parse_camera_index`)."""
    try:
        return parse_camera_index(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def resolution(text: str) -> tuple[int, int]:
    """A camera resolution, WIDTHxHEIGHT: 1280x720 (see :func:`emotion.settings.parse_resolution`)."""
    try:
        return parse_resolution(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def device_arg(text: str) -> str:
    try:
        return device_name(text)
    except MoodtunesError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_source_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """--camera / --source / --loop; subcommands pass argparse.SUPPRESS so that they can go either side."""
    source = p.add_mutually_exclusive_group()
    source.add_argument("--camera", type=camera_index, default=default,
                        help="camera number (default: the one chosen last in the window, else 0)")
    source.add_argument("--source", default=default,
                        help="video file, image file or folder of images instead of the camera")
    p.add_argument("--loop", action="store_true", default=default, help="replay --source from the start when it ends")
    p.add_argument("--resolution", type=resolution, metavar="WxH", default=default,
                   help="what to ask the camera for, e.g. 1280x720 (default {}x{}); a camera that gives another is "
                        "used as it is, with a warning; files keep their own size".format(*DEFAULT_RESOLUTION))


def add_engine_options(p: argparse.ArgumentParser, default: str | None = None, calibration: bool = True) -> None:
    """The model, detector and (with ``calibration``) calibration options; subcommands pass argparse.SUPPRESS
    (see above)."""
    from emotion.classifier import BACKENDS  # here, not at the top: they load OpenCV (see the module's docstring)
    from emotion.detection import DETECTORS

    def given(value: str) -> str:
        return value if default is None else default

    p.add_argument("--checkpoint", default=default,
                   help="emotion model: a shipped one by name (emotion_ferplus, the default; emotion_fer2013), or "
                        "a file: .onnx (run by ONNX Runtime or OpenCV) or .pt (run by torch)")
    p.add_argument("--device", default=given("auto"), type=device_arg,
                   help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--backend", choices=BACKENDS, default=given("auto"),
                   help="what runs the emotion network: auto = torch on a GPU, else ONNX Runtime, else OpenCV's "
                        "DNN module (default: auto)")
    p.add_argument("--detector", choices=DETECTORS, default=given("auto"),
                   help="face detector; auto = YuNet, or the Haar cascade when YuNet is unavailable (default: auto)")
    p.add_argument("--face-model", default=default, help="YuNet .onnx file to use instead of the shipped one")
    if not calibration:
        return
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--calibration", default=default, metavar="FILE",
                        help="your neutral face, from `moodtunes calibrate` (default: the one saved in the "
                             "config folder, if any)")
    choice.add_argument("--no-calibration", action="store_true", default=default,
                        help="ignore any saved calibration")


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    """The typed settings the options of :func:`add_source_options` and :func:`add_engine_options` ask for.

    A subcommand's parser may lack some options (``calibrate`` has no --calibration): those keep
    their defaults.
    """
    def given(name: str, default: object = None) -> object:
        return getattr(args, name, default)

    calibration = given("calibration")
    return AppSettings(
        source=SourceSettings(path=given("source"), camera=given("camera"), loop=bool(given("loop", False)),
                              resolution=given("resolution")),
        engine=EngineSettings(checkpoint=given("checkpoint"), device=given("device", "auto"),
                              backend=given("backend", "auto"), detector=given("detector", "auto"),
                              face_model=given("face_model"),
                              calibration_file=Path(calibration) if calibration else None,
                              use_calibration=not given("no_calibration", False)),
        first_face_report=bool(given("first_face_report", False)),
        follow=bool(given("follow", False)),
        follow_hold_s=given("follow_hold"),
        follow_gap_s=given("follow_gap"),
        play_when_made=False if given("no_play", False) else None,
    )
