"""Face detection: the shipped YuNet model (offline, verified), YuNet itself, Haar and fallback."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from clips import face_scene
from conftest import ROOT, YUNET_TEST_MODEL, needs

from emotion import detection
from emotion.detection import (
    YUNET_MODEL,
    YUNET_SHA256,
    DetectorUnavailable,
    HaarDetector,
    YuNetDetector,
    create_detector,
    iou,
)


@pytest.fixture
def shipped_model_gone(tmp_path, monkeypatch):
    """The packaged YuNet file as a broken install would have it: not there (tests may write one)."""
    missing = tmp_path / YUNET_MODEL.name
    monkeypatch.setattr(detection, "YUNET_MODEL", missing)
    return missing


def test_the_shipped_model_is_the_official_release_with_its_licence():
    assert hashlib.sha256(YUNET_MODEL.read_bytes()).hexdigest() == YUNET_SHA256
    notice = YUNET_MODEL.with_name("face_detection_yunet_2023mar.LICENSE.txt").read_text()
    assert "MIT License" in notice and "Copyright (c) 2020 Shiqi Yu" in notice and YUNET_SHA256 in notice


def test_auto_is_yunet_offline_from_the_first_run(isolated_environment, monkeypatch, astronaut_bgr):
    """An empty config folder and no network: YuNet all the same, with nothing to report or write."""
    def no_network(*args, **kwargs):
        raise OSError("this test has no network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    detector = create_detector("auto")
    assert isinstance(detector, YuNetDetector) and detector.note == ""
    (found,) = detector.detect(face_scene(astronaut_bgr, dx=60))
    assert found.score > 0.7 and found.landmarks.shape == (5, 2)
    assert list(isolated_environment.iterdir()) == []  # no config, no cache: nothing was written


def test_auto_falls_back_to_haar_and_says_why_and_what_to_do(shipped_model_gone):
    detector = create_detector("auto")
    assert isinstance(detector, HaarDetector)
    assert detector.note.startswith("YuNet unavailable") and "cannot be read" in detector.note
    assert "Reinstall moodtunes" in detector.note


def test_a_damaged_shipped_model_is_not_used_even_if_opencv_runs_it(shipped_model_gone, astronaut_bgr):
    damaged = bytearray(YUNET_MODEL.read_bytes())
    damaged[len(damaged) // 2] ^= 1  # one bit of a weight: OpenCV still loads it and finds faces with it
    shipped_model_gone.write_bytes(damaged)
    detector = create_detector("auto")
    assert isinstance(detector, HaarDetector) and "SHA-256 differs" in detector.note
    # The same file named by --face-model is the user's choice, used as given: no checksum.
    theirs = create_detector("auto", face_model=shipped_model_gone)
    assert isinstance(theirs, YuNetDetector) and len(theirs.detect(face_scene(astronaut_bgr))) == 1


def test_asking_for_yunet_without_a_model_is_an_error(shipped_model_gone):
    with pytest.raises(DetectorUnavailable, match="--face-model"):
        create_detector("yunet")


def test_a_bad_face_model_file_is_an_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("hello")
    with pytest.raises(DetectorUnavailable, match="not a usable YuNet"):
        create_detector("auto", face_model=bad)
    with pytest.raises(DetectorUnavailable, match="not found"):
        create_detector("auto", face_model=tmp_path / "missing.onnx")


def test_haar_finds_the_astronaut(astronaut_bgr):
    faces = HaarDetector().detect(face_scene(astronaut_bgr))
    assert len(faces) == 1 and faces[0].landmarks is None


@needs(YUNET_TEST_MODEL)
def test_yunet_finds_the_face_with_landmarks(astronaut_bgr):
    detector = create_detector("auto", face_model=YUNET_TEST_MODEL)
    assert isinstance(detector, YuNetDetector) and detector.note == ""
    scene = face_scene(astronaut_bgr, dx=60)
    (found,) = detector.detect(scene)
    x, y, w, h = found.box
    assert 60 < x + w / 2 < 420 and 60 < w < 250 and found.score > 0.7
    assert found.landmarks.shape == (5, 2)
    right_eye, left_eye = found.landmarks[0], found.landmarks[1]
    assert right_eye[0] < left_eye[0] and abs(right_eye[1] - left_eye[1]) < h / 4


@needs(YUNET_TEST_MODEL)
def test_yunet_handles_gray_bgra_and_blank_frames(astronaut_bgr):
    import cv2

    detector = YuNetDetector(YUNET_TEST_MODEL)
    scene = face_scene(astronaut_bgr)
    assert len(detector.detect(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY))) == 1
    assert len(detector.detect(cv2.cvtColor(scene, cv2.COLOR_BGR2BGRA))) == 1
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []



@needs(YUNET_TEST_MODEL)
def test_face_finder_follows_a_face_cheaply_and_still_finds_new_ones(astronaut_bgr):
    """Between whole-frame searches it looks only around the last face; a new face shows up at
    the next whole-frame search, a lost one at once."""
    from emotion.detection import FaceFinder

    detector = YuNetDetector(YUNET_TEST_MODEL)
    calls = {"whole": 0, "near": 0}
    whole, near = detector.detect, detector.detect_near
    detector.detect = lambda frame: calls.__setitem__("whole", calls["whole"] + 1) or whole(frame)
    detector.detect_near = lambda frame, *rest: calls.__setitem__("near", calls["near"] + 1) or near(frame, *rest)
    finder = FaceFinder(detector, every_frames=24, every_seconds=10)  # 24 here: two whole-frame searches in 48
    moving = [face_scene(astronaut_bgr, dx=int(140 + 60 * np.sin(i / 5))) for i in range(48)]
    found = [finder.find(frame, i / 30) for i, frame in enumerate(moving)]
    assert all(len(f) == 1 for f in found)
    assert calls == {"whole": 2, "near": 46}  # frames 0 and 24 searched whole
    truth = [whole(frame)[0].box for frame in moving]
    assert all(iou(f[0].box, t) > 0.7 for f, t in zip(found, truth, strict=True))  # boxes follow the head
    half = face_scene(astronaut_bgr, dx=10, size=(320, 480), face_side=300)
    two = np.hstack([half, half])
    finder.reset()
    assert len(finder.find(two, 0.0)) == 2
    calls["whole"] = 0
    assert finder.find(np.full_like(two, 40), 0.05) == [] and calls["whole"] == 1  # lost: whole frame at once


def test_the_mosaic_keeps_each_square_whole_and_apart():
    """Eight 64 px squares in rows of up to MOSAIC_ROW px: five, then three; each copied whole to its own
    place, the rest blank. (Other layouts were measured: one row was faster but its search kept fewer
    of the 8-face 1080p clip's faces, 6.96 against 7.51 a frame.)"""
    tiles = [np.full((64, 64, 3), 20 * k + 10, np.uint8) for k in range(8)]
    mosaic, origins = detection._mosaic(tiles)
    assert mosaic.shape == (2 * 64 + detection.MOSAIC_GAP, 5 * 64 + 4 * detection.MOSAIC_GAP, 3)
    assert [y for _, y in origins] == [0] * 5 + [64 + detection.MOSAIC_GAP] * 3
    for tile, (x, y) in zip(tiles, origins, strict=True):
        assert (mosaic[y : y + 64, x : x + 64] == tile).all()
    assert (mosaic == 0).sum() == mosaic.size - 8 * 64 * 64 * 3


@needs(YUNET_TEST_MODEL)
def test_eight_faces_are_each_found_in_their_own_square():
    from clips import GroupScene, real_portraits

    scene = GroupScene((1920, 1080), 8)
    portraits = real_portraits()
    frame, truth = scene.frame(0, portraits), scene.face_boxes(0, portraits)
    boxes = [tuple(round(v) for v in box) for box in truth]
    found = YuNetDetector(YUNET_TEST_MODEL).detect_near(frame, boxes)
    assert len(found) == 8
    hits = [any(iou(d.box, box) > 0.5 for d in near) for near, box in zip(found, boxes, strict=True)]
    assert sum(hits) >= 6  # the turned cameraman may hide at 64 px; no square takes a neighbour's face
    assert all(iou(d.box, box) > 0.3 for near, box in zip(found, boxes, strict=True) for d in near)


def test_the_app_sets_thread_counts_and_wait_policies_at_start_up():
    script = ("import main, os, cv2; main.configure_process(); "
              "print(cv2.getNumThreads(), os.environ['OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER'], "
              "os.environ['OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN'], os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_", "OMP_", "MOODTUNES_THREADS"))}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "0", "1000", "PASSIVE"]  # one thread: the int8 network on ONNX Runtime
    without_onnxruntime = "import sys; sys.modules['onnxruntime'] = None; " + script  # OpenCV runs the network
    out = subprocess.run([sys.executable, "-c", without_onnxruntime], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == str(min(4, os.cpu_count()))
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # what the user sets wins
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[-1] == "ACTIVE"
