"""The command-line layer every front end shares: argument builders, the engine they ask for,
and the one printer of ``warning:`` and ``error:`` lines.

``main.py`` (the app and its subcommands), ``playlist/cli.py``, ``gui/server.py`` and the
``python -m training.x`` scripts build their parsers and report problems through here, so an
option reads and fails the same way everywhere. Importing this module loads neither OpenCV nor
a model: the app sets OpenCV's process-wide settings first (``main.configure_process``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, NoReturn

from emotion.device import device_name
from emotion.errors import MoodtunesError

if TYPE_CHECKING:  # the engine loads only when a command needs it
    from emotion.calibration import Calibration
    from emotion.recognizer import EmotionRecognizer


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
    """A camera number: 0, 1, ... (OpenCV crashes the process on a negative one, so it never gets one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a camera number (0, 1, ...), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a camera: cameras are numbered 0, 1, 2, ...")
    return value


# What the app asks a camera for unless told otherwise (--resolution); see the README's "Speed and memory".
DEFAULT_RESOLUTION = (640, 480)


def resolution(text: str) -> tuple[int, int]:
    """A camera resolution, WIDTHxHEIGHT: 1280x720."""
    found = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not found:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, such as 1280x720; got {text!r}")
    width, height = int(found[1]), int(found[2])
    if not (64 <= width <= 7680 and 48 <= height <= 4320):
        raise argparse.ArgumentTypeError(f"{width}x{height} is not a camera resolution: from 64x48 to 7680x4320")
    return width, height


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


def source_from_args(args: argparse.Namespace) -> str | int:
    """What ``open_source`` gets: --source, else --camera, else camera 0."""
    if getattr(args, "source", None) is not None:
        return args.source
    return getattr(args, "camera", None) or 0


def resolution_from_args(args: argparse.Namespace) -> tuple[int, int]:
    """What the camera is asked for: --resolution, else DEFAULT_RESOLUTION."""
    return getattr(args, "resolution", None) or DEFAULT_RESOLUTION


def calibration_from_args(args: argparse.Namespace) -> Calibration | None:
    """--calibration FILE, none with --no-calibration, else the one saved in the config folder (if any)."""
    from emotion.calibration import Calibration, saved_calibration_path

    if getattr(args, "no_calibration", False):
        return None
    if getattr(args, "calibration", None):
        return Calibration.load(args.calibration)
    path = saved_calibration_path()
    return Calibration.load(path) if path.is_file() else None


def recognizer_from_args(args: argparse.Namespace) -> EmotionRecognizer:
    """The EmotionRecognizer that the options of :func:`add_engine_options` ask for."""
    from emotion.recognizer import EmotionRecognizer

    return EmotionRecognizer(args.checkpoint, device=args.device, detector=args.detector,
                             face_model=args.face_model, backend=args.backend,
                             calibration=calibration_from_args(args))
