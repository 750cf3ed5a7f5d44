"""Face detection: YuNet's download (over a local server), YuNet itself, Haar and fallback."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from clips import face_scene
from conftest import ROOT, YUNET_TEST_MODEL, needs

from emotion.detection import (
    YUNET_FILENAME,
    DetectorUnavailable,
    HaarDetector,
    YuNetDetector,
    create_detector,
    ensure_yunet_model,
    iou,
)


class ModelServer:
    """Serves bytes at /model.onnx; counts requests; can stall to test timeouts."""

    def __init__(self, payload: bytes, stall: float = 0.0, status: int = 200):
        self.payload, self.stall, self.status, self.hits = payload, stall, status, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits += 1
                time.sleep(server.stall)
                self.send_response(server.status)
                self.send_header("Content-Length", str(len(server.payload)))
                self.end_headers()
                self.wfile.write(server.payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.onnx"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_bytes():
    if YUNET_TEST_MODEL.exists():
        return YUNET_TEST_MODEL.read_bytes()
    return b"not really an onnx model, but bytes with a known checksum" * 100


def test_download_verifies_and_caches_once(tmp_path, model_bytes):
    server = ModelServer(model_bytes)
    sha = hashlib.sha256(model_bytes).hexdigest()
    try:
        path = ensure_yunet_model(server.url, tmp_path, sha256=sha)
        assert path == tmp_path / YUNET_FILENAME and path.read_bytes() == model_bytes
        assert ensure_yunet_model(server.url, tmp_path, sha256=sha) == path
        assert server.hits == 1  # the second call used the verified cache
    finally:
        server.close()


def test_wrong_checksum_is_rejected_and_nothing_is_written(tmp_path, model_bytes):
    server = ModelServer(model_bytes + b"tampered")
    try:
        with pytest.raises(DetectorUnavailable, match="checksum"):
            ensure_yunet_model(server.url, tmp_path, sha256=hashlib.sha256(model_bytes).hexdigest())
        assert list(tmp_path.iterdir()) == []
    finally:
        server.close()


def test_corrupt_cached_file_is_replaced(tmp_path, model_bytes):
    (tmp_path / YUNET_FILENAME).write_bytes(b"half a model")
    server = ModelServer(model_bytes)
    try:
        path = ensure_yunet_model(server.url, tmp_path, sha256=hashlib.sha256(model_bytes).hexdigest())
        assert path.read_bytes() == model_bytes
    finally:
        server.close()


def test_failed_download_keeps_a_good_cached_copy_untouched(tmp_path, model_bytes):
    server = ModelServer(b"", status=404)
    try:
        with pytest.raises(DetectorUnavailable, match="could not download"):
            ensure_yunet_model(server.url, tmp_path, sha256="0" * 64)
    finally:
        server.close()


def test_download_times_out_instead_of_hanging(tmp_path):
    server = ModelServer(b"x", stall=5)
    try:
        started = time.monotonic()
        with pytest.raises(DetectorUnavailable, match="could not download"):
            ensure_yunet_model(server.url, tmp_path, timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        server.close()


def test_auto_falls_back_to_haar_and_says_why():
    detector = create_detector("auto")  # the test environment's YuNet URL is a closed port
    assert isinstance(detector, HaarDetector)
    assert "YuNet unavailable" in detector.note and "could not download" in detector.note


def test_asking_for_yunet_without_a_model_is_an_error():
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
    detector.detect_near = lambda frame, box: calls.__setitem__("near", calls["near"] + 1) or near(frame, box)
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


def test_the_app_sets_thread_counts_and_wait_policies_at_start_up():
    script = ("import main, os, cv2; main.configure_process(); "
              "print(cv2.getNumThreads(), os.environ['OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER'], "
              "os.environ['OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN'], os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_", "OMP_", "MOODTUNES_THREADS"))}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(min(4, os.cpu_count())), "0", "1000", "PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # what the user sets wins
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[-1] == "ACTIVE"
