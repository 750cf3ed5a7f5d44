"""--resolution asks the camera for a size; the app keeps what the camera gives and says so in one line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotion.cli import DEFAULT_RESOLUTION, resolution, settings_from_args
from emotion.sources import CameraSource

ROOT = Path(__file__).resolve().parent.parent


class ModeCamera:
    """A camera driver with a fixed set of modes: a size asked for becomes the nearest mode, as V4L2 does."""

    def __init__(self, modes: list[tuple[int, int]]) -> None:
        self.modes, self.size, self.asked = modes, modes[0], {}

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return True

    def set(self, prop: int, value: float) -> bool:
        import cv2

        self.asked[{cv2.CAP_PROP_FRAME_WIDTH: "width", cv2.CAP_PROP_FRAME_HEIGHT: "height"}[prop]] = int(value)
        if len(self.asked) == 2:
            want = (self.asked["width"], self.asked["height"])
            self.size = min(self.modes, key=lambda m: abs(m[0] - want[0]) + abs(m[1] - want[1]))
        return True

    def read(self) -> tuple[bool, np.ndarray]:
        return True, np.zeros((self.size[1], self.size[0], 3), np.uint8)

    def release(self) -> None:
        pass


@pytest.mark.parametrize(("text", "size"), [("1280x720", (1280, 720)), ("1920X1080", (1920, 1080)),
                                            (" 640 x 480 ", (640, 480))])
def test_resolution_reads_width_by_height(text, size):
    assert resolution(text) == size


@pytest.mark.parametrize(("text", "message"), [("1280", "expected WIDTHxHEIGHT, such as 1280x720"),
                                               ("wide", "expected WIDTHxHEIGHT"), ("1280x-720", "expected"),
                                               ("10x10", "from 64x48 to 7680x4320"),
                                               ("100000x720", "not a camera resolution")])
def test_a_bad_resolution_is_refused_in_one_line(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        resolution(text)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--resolution", text, "--headless"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr


def test_the_camera_is_asked_for_the_resolution_and_a_different_one_is_kept_and_named():
    warnings: list[str] = []
    driver = ModeCamera([(640, 480), (1280, 720)])
    with CameraSource(0, capture_factory=lambda: driver, resolution=(1920, 1080), warn=warnings.append) as camera:
        frame = camera.read()
        assert driver.asked == {"width": 1920, "height": 1080}
        assert camera.size == (1280, 720) and frame.image.shape[:2] == (720, 1280)
    assert warnings == ["camera 0 gives 1280x720, not the 1920x1080 asked for; using that"]


def test_a_camera_that_gives_what_was_asked_is_not_reported_and_none_asks_for_nothing():
    warnings: list[str] = []
    driver = ModeCamera([(640, 480), (1280, 720)])
    with CameraSource(0, capture_factory=lambda: driver, resolution=(1280, 720), warn=warnings.append) as camera:
        assert camera.size == (1280, 720)
    assert warnings == []
    driver = ModeCamera([(1280, 720), (640, 480)])
    with CameraSource(0, capture_factory=lambda: driver, warn=warnings.append) as camera:  # the library's default
        assert camera.size == (1280, 720) and driver.asked == {}
    assert warnings == []


def test_the_app_asks_for_its_default_unless_told_otherwise():
    from main import build_parser

    def asked(*argv: str) -> tuple[int, int]:
        return settings_from_args(build_parser().parse_args(argv)).source.camera_size

    assert build_parser().parse_args([]).resolution is None  # not given: the window may use the one chosen last
    assert asked() == DEFAULT_RESOLUTION and asked("serve") == DEFAULT_RESOLUTION
    assert asked("--resolution", "1280x720") == (1280, 720)
    assert asked("calibrate", "--resolution", "1280x720") == (1280, 720)
    assert asked("--resolution", "1280x720", "serve") == (1280, 720)
