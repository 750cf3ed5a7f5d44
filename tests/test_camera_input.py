"""A camera number is checked before OpenCV sees it, and a missing camera costs the user one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from emotion.sources import SourceError, open_source


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("mode", [["--headless"], ["--benchmark"], [], ["serve", "--port", "1"],
                                  ["calibrate"]])
def test_a_negative_camera_is_refused_in_every_mode_without_a_crash(mode):
    # cv2.VideoCapture(-1) segfaults (exit -11); the parser must refuse it first.
    args = [*mode, "--camera", "-1"] if mode and mode[0] in ("serve", "calibrate") else ["--camera", "-1", *mode]
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "-1 is not a camera" in result.stderr


def test_a_negative_camera_is_refused_by_the_library_too():
    for source in (-1, "-1"):
        with pytest.raises(SourceError, match="no camera -1"):
            open_source(source)


def test_a_missing_camera_gives_one_line_not_opencvs_log():
    # This machine (and CI) has no camera 0: OpenCV used to print ~40 [ WARN ]/[ ERROR ] lines first.
    result = run("--camera", "7", "--headless", "--detector", "haar")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(result.stderr.splitlines()) == 1 and "Cannot open camera 7" in result.stderr


def test_serve_refuses_a_missing_file_at_once_instead_of_serving_a_failed_source(tmp_path):
    result = run("serve", "--source", str(tmp_path / "missing.mp4"), "--port", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: Source not found") and "API on" not in result.stderr


def test_calibrate_with_a_model_that_cannot_says_so_before_asking_to_hold_still(face_video, tiny_checkpoint):
    # The tiny model stores no typical neutral face: nothing to calibrate against.
    result = run("calibrate", "--source", str(face_video), "--checkpoint", str(tiny_checkpoint), "--detector", "haar")
    assert result.returncode == 2 and "Look at the camera" not in result.stderr
    assert result.stderr.count("\n") == 1 and "stores no typical neutral face" in result.stderr


def test_a_single_photo_has_a_mood_share_in_the_summary(tmp_path, astronaut_bgr):
    import json

    import cv2
    from clips import face_scene

    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    result = run("--source", str(photo), "--headless", "--detector", "haar")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["mood_share"] == {"happy": 1.0}


def test_a_calibration_that_cannot_be_deleted_is_one_line(tmp_path):
    stuck = tmp_path / "calibration.json"
    stuck.mkdir()  # not a file: unlinking it fails, as in a read-only folder
    result = run("calibrate", "--reset", "--out", str(stuck))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: The calibration {stuck} could not be deleted")


def test_resetting_a_calibration_says_whether_there_was_one(tmp_path):
    saved = tmp_path / "calibration.json"
    result = run("calibrate", "--reset", "--out", str(saved))
    assert result.returncode == 0 and result.stderr == f"No saved calibration to forget at {saved}.\n"
    saved.write_text("{}")
    result = run("calibrate", "--reset", "--out", str(saved))
    assert result.returncode == 0 and result.stderr == f"Calibration deleted: {saved}\n" and not saved.exists()
