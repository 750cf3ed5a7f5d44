"""Face detection: YuNet's download (over a local server), YuNet itself, Haar and fallback."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from clips import face_scene
from conftest import YUNET_TEST_MODEL, needs

from emotion.detection import (
    YUNET_FILENAME,
    DetectorUnavailable,
    HaarDetector,
    YuNetDetector,
    create_detector,
    ensure_yunet_model,
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

