"""The local API: every endpoint and every kind of bad input through FastAPI's TestClient; a real
socket where one matters (a slow client, the event stream, 50 listeners, the command line, and
the overlay page and /docs in headless Chromium)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
import zlib

import cv2
import numpy as np
import pytest
import requests
import uvicorn
from clips import face_scene
from conftest import FERPLUS_ZIP, ROOT, SHIPPED_CHECKPOINT, free_port, needs
from fake_spotify import consent_in_browser
from fastapi import FastAPI
from fastapi.testclient import TestClient

from emotion import detection
from emotion.calibration import Calibration, saved_calibration_path
from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.classes import EMOTIONS, STYLES
from emotion.classifier import TorchClassifier
from emotion.decision import DecisionRule
from emotion.recognizer import EmotionRecognizer
from emotion.sources import open_source
from gui.api import ServeSettings, create_app
from playlist.make import make_playlist
from playlist.spotify import SpotifyAuth, load_config
from playlist.spotify_setup import SETUP_STEPS

INSTALL_HINT = 'pip install "moodtunes[serve]"'


class Server:
    """The app on a real socket, served by uvicorn on a thread of its own."""

    def __init__(self, app: FastAPI) -> None:
        self.app, self.port = app, app.state.server.settings.port
        self.base = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.base + path, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr):
    path = tmp_path_factory.mktemp("api") / "me.jpg"
    cv2.imwrite(str(path), face_scene(astronaut_bgr))
    return path


@pytest.fixture(scope="module")
def neutral_photo(tmp_path_factory):
    """A resting face, as a calibration needs one: the first FER+ validation face that all ten annotators
    called neutral, enlarged into a 640x480 scene (the astronaut smiles, and a smile is refused)."""
    with zipfile.ZipFile(FERPLUS_ZIP) as archive:
        votes = csv.reader(io.StringIO(archive.read("FER2013Valid/label.csv").decode()))
        name = next(row[0] for row in votes if row[2] == "10")  # row[2]: the neutral votes, of 10
        face = cv2.imdecode(np.frombuffer(archive.read("FER2013Valid/" + name), np.uint8), cv2.IMREAD_COLOR)
    path = tmp_path_factory.mktemp("neutral") / "neutral.png"
    cv2.imwrite(str(path), face_scene(face, dx=200, face_side=240))
    return path


@pytest.fixture(scope="module")
def decided_model(tmp_path_factory):
    """The shipped model with the typical neutral that a calibration needs, measured as training.decide does
    (its mean logits on the FER+ validation faces most annotators called neutral); the shipped file has none."""
    from training.decide import typical_neutral

    shipped = load_checkpoint(SHIPPED_CHECKPOINT)
    neutral = typical_neutral(TorchClassifier(SHIPPED_CHECKPOINT, "cpu", precision="float32"), str(FERPLUS_ZIP))
    path = tmp_path_factory.mktemp("decided") / "emotion_ferplus_decided.pt"
    save_checkpoint(path, shipped.model, mean=shipped.mean, std=shipped.std, metadata=shipped.metadata,
                    decision=DecisionRule(shipped.decision.prior, shipped.decision.tau, neutral))
    return path


def haar_recognizer() -> EmotionRecognizer:
    return EmotionRecognizer(device="cpu", detector="haar")


def create(source, make=make_playlist, recognizer=haar_recognizer, **settings) -> FastAPI:
    """The app on a looping ``source`` (None: no live source), with /events every 100 ms."""
    settings = ServeSettings(port=free_port(), events_interval_ms=100, **settings)
    return create_app(settings, recognizer,
                      None if source is None else (lambda warn: open_source(source, loop=True, warn=warn)),
                      make_playlist=make)


def client(app: FastAPI) -> TestClient:
    """The app without a socket; ``with`` it to run its lifespan (the live source)."""
    return TestClient(app, base_url="http://127.0.0.1")


def start(source, **kwargs) -> Server:
    return Server(create(source, **kwargs))


def wait_for(api, path: str, until, timeout: float = 20) -> dict:
    """GET ``path`` until ``until(body)``; the last body either way."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.get(path).json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def wait_for_mood(api) -> dict:
    return wait_for(api, "/mood", lambda body: body["mood"])


def assert_error(response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"} and text in body["error"] and "Traceback" not in response.text


def test_health_emotions_mood_and_analyze(photo):
    with client(create(photo)) as api:
        mood = wait_for_mood(api)
        assert mood["mood"]["label"] == "happy" and mood["faces"] == 1 and mood["state"] == "running"
        assert mood["playlists"] == [] and "error" not in mood
        health = api.get("/health").json()
        assert health["status"] == "ok" and health["backend"] == "onnxruntime" and health["device"] == "cpu"
        assert health["detector"] == "Haar cascade" and health["model"] == "emotion_ferplus.int8.onnx"
        assert health["source"] == {"name": str(photo), "kind": "photos", "state": "running"}
        assert health["calibrated"] is False and "detector_note" not in health and "calibration_note" not in health
        assert health["uptime_s"] >= 0
        emotions = api.get("/emotions").json()
        assert [e["name"] for e in emotions] == list(EMOTIONS)
        assert emotions[3]["colour"] == STYLES["happy"].colour
        analyzed = api.post("/analyze", content=photo.read_bytes()).json()
        (face,) = analyzed["faces"]
        assert (analyzed["width"], analyzed["height"]) == (640, 480)
        assert face["label"] == "happy" and set(face) == {"box", "label", "confidence", "probabilities"}
        assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)


def test_analyze_reports_a_huge_photo_in_its_own_pixels(astronaut_bgr):
    scene = face_scene(astronaut_bgr)
    ok, jpeg = cv2.imencode(".jpg", cv2.resize(scene, (9000, 6750)), [cv2.IMWRITE_JPEG_QUALITY, 70])  # 61 MP
    with client(create(None)) as api:
        small = api.post("/analyze", content=cv2.imencode(".png", scene)[1].tobytes()).json()
        big = api.post("/analyze", content=jpeg.tobytes()).json()
    # Decoded at half size to bound memory, but reported in the upload's own 9000 x 6750 pixels.
    assert (big["width"], big["height"]) == (9000, 6750) and "read at 1/2" in big["notes"][0]
    expected = [v * 9000 / 640 for v in small["faces"][0]["box"]]
    assert big["faces"][0]["box"] == pytest.approx(expected, rel=0.05, abs=40)


def test_the_apis_faces_and_moods_are_the_engines_own(photo):
    """The schemas /docs shows for a face and a mood hold what the engine's to_dict() says, no key more or less:
    /analyze sends FaceResult.to_dict(), /mood and /events a Mood's, --headless a FrameAnalysis' (faces with
    their track)."""
    from emotion import EmotionPipeline
    from gui.api.models import Face, SmoothedMood

    def same(model, engine: dict) -> None:
        assert set(engine) == set(model.model_fields), model.__name__
        assert model.model_validate(engine).model_dump(mode="json") == json.loads(json.dumps(engine))

    image = cv2.imread(str(photo))
    (face,) = haar_recognizer().analyze(image)
    same(Face, face.to_dict())
    pipeline = EmotionPipeline(haar_recognizer())
    analysis = next(a for a in (pipeline.process(image, i / 10) for i in range(30)) if a.mood is not None)
    same(SmoothedMood, analysis.mood.to_dict(analysis.timestamp))
    headless = analysis.to_dict()
    same(SmoothedMood, headless["mood"])
    (tracked,) = headless["faces"]
    same(Face, {name: tracked[name] for name in Face.model_fields})


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that says width x height: the header is all a size check reads."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))


def test_bad_input_is_a_4xx_json_with_a_message(photo):
    with client(create(photo, max_upload_bytes=200_000)) as api:
        assert_error(api.post("/analyze", content=b"not an image"), 400, "not an image")
        assert_error(api.post("/analyze", content=b""), 400, "Send an image")
        assert_error(api.post("/analyze", content=b"x" * 300_000), 413, "larger than")
        assert_error(api.post("/analyze", content=png_header_only(10_000, 8_000)), 413, "80 megapixels")
        # curl -F file=@me.jpg: a form, not the image; the answer says how to send it.
        form = api.post("/analyze", files={"file": ("me.jpg", photo.read_bytes(), "image/jpeg")})
        assert_error(form, 415, "curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' "
                                "http://127.0.0.1/analyze")
        assert_error(api.post("/playlist", json={"mood": "elated"}), 400, "mood")
        assert_error(api.post("/playlist", content="{not json", headers={"Content-Type": "application/json"}), 400,
                     "Invalid request")
        assert_error(api.post("/playlist", json={"mood": "happy", "strategy": "sideways"}), 400, "strategy")
        assert_error(api.get("/nowhere"), 404, "No such endpoint")
        assert_error(api.get("/analyze"), 405, "not allowed")


def test_requests_from_elsewhere_are_refused(photo):
    with client(create(photo)) as api:
        assert_error(api.get("/health", headers={"Host": "evil.example"}), 400, "127.0.0.1 or localhost")
        assert_error(api.post("/playlist", json={"mood": "happy"}, headers={"Origin": "http://evil.example"}),
                     403, "other web pages")
        assert api.get("/health", headers={"Host": "localhost:8765"}).status_code == 200


def test_a_token_when_one_is_set(photo):
    with client(create(photo, token="s3cret")) as api:
        assert_error(api.get("/health"), 401, "token")
        assert api.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert api.get("/emotions?token=s3cret").status_code == 200
        assert_error(api.get("/health?token=wrong"), 401)
        # The documentation holds nothing of the user's: a browser can load it without the header.
        assert api.get("/docs").status_code == api.get("/openapi.json").status_code == 200


def test_the_api_as_docs_shows_it_offline():
    with client(create(None)) as api:
        schema = api.get("/openapi.json").json()
        page = api.get("/docs").text
        assets = [api.get(f"/docs-assets/{name}") for name in ("swagger-ui-bundle.js", "swagger-ui.css")]
    operations = {(method.upper(), path): operation for path, methods in schema["paths"].items()
                  for method, operation in methods.items()}
    assert set(operations) == {("GET", "/"), ("GET", "/health"), ("GET", "/emotions"), ("POST", "/analyze"),
                               ("GET", "/mood"), ("GET", "/events"), ("POST", "/playlist"), ("POST", "/calibrate"),
                               ("DELETE", "/calibrate"), ("GET", "/dj"), ("POST", "/dj/follow"), ("POST", "/dj/like"),
                               ("POST", "/dj/skip")}

    def answer(method: str, path: str, status: str = "200") -> str:
        return operations[method, path]["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    assert answer("GET", "/health").endswith("/Health") and answer("GET", "/mood").endswith("/MoodSnapshot")
    assert answer("POST", "/analyze").endswith("/Analysis") and answer("POST", "/playlist").endswith("/PlaylistMade")
    assert answer("POST", "/calibrate").endswith("/Calibrated")
    assert answer("POST", "/calibrate", "422").endswith("/ErrorResponse")
    assert "422" not in operations["POST", "/playlist"]["responses"]  # its invalid bodies are 400s, as documented
    assert "image/*" in operations["POST", "/analyze"]["requestBody"]["content"]
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn" not in page
    assert [a.status_code for a in assets] == [200, 200] and len(assets[0].content) > 500_000


def test_another_interface_needs_a_token():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--host", "0.0.0.0", "--no-source"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--token" in result.stderr


def test_a_port_in_use_is_one_error_line_and_no_banner():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--no-source", "--port", str(port)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert f"Port {port} is already in use" in result.stderr and "--port" in result.stderr


def read_reply(connection: socket.socket) -> bytes:
    """An HTTP reply with a JSON body, read until its end (or the connection's)."""
    connection.settimeout(20)
    reply = b""
    while b"}" not in reply:  # headers and the JSON body may come in separate segments
        chunk = connection.recv(65536)
        if not chunk:
            break
        reply += chunk
    return reply


@pytest.mark.parametrize("stop, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"])
def test_serve_stops_on_a_signal_answering_what_is_in_flight(photo, stop, status):
    """SIGTERM (a service manager, `kill`) stops the server as Ctrl-C does: the request in flight is answered,
    the /events stream ends instead of holding the shutdown, and the exit status says which signal it was."""
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--source", str(photo), "--port", "0",
                                "--detector", "haar"], stderr=subprocess.PIPE, text=True)
    try:
        banner = process.stderr.readline()
        base = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)
        deadline = time.monotonic() + 60
        while True:  # the banner comes once the port is bound, a moment before uvicorn accepts on it
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(base + "/mood", timeout=10).json()["mood"]:
                    break
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        assert requests.post(base + "/analyze", data=photo.read_bytes(), timeout=60).status_code == 200  # warm
        events = requests.get(base + "/events", stream=True, timeout=10)
        body = photo.read_bytes()
        port = int(base.rsplit(":", 1)[1])
        in_flight = socket.create_connection(("127.0.0.1", port))
        in_flight.sendall(b"POST /analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body[:1000])
        time.sleep(0.3)  # the server is reading the body
        stopped = time.monotonic()
        process.send_signal(stop)
        time.sleep(0.3)
        in_flight.sendall(body[1000:])
        reply = read_reply(in_flight)
        assert reply.startswith(b"HTTP/1.1 200") and b'"label":"happy"' in reply, reply[:200]
        assert process.wait(timeout=30) == status
        assert time.monotonic() - stopped < 5  # not held for the shutdown's whole grace by the event stream
        events.close()
        in_flight.close()
    finally:
        process.kill()
        errors = process.stderr.read()
    assert "Traceback" not in errors and "error" not in errors.lower(), errors


def test_serve_help_shows_its_defaults_and_the_readmes_install_hint(capsys):
    from main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 8765)", "(default: 127.0.0.1;", "(default: 250)", "(default: 64)"):
        assert default in text
    assert INSTALL_HINT in text and INSTALL_HINT in (ROOT / "README.md").read_text(encoding="utf-8")


def test_serve_help_lists_every_endpoint_as_the_api_declares_it(capsys):
    from main import build_parser

    with client(create(None)) as api:
        operations = {(method.upper(), path) for path, methods in api.get("/openapi.json").json()["paths"].items()
                      for method in methods}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    listed = re.findall(r"^  (GET|POST|DELETE) +(/\S*) +\S", text, flags=re.MULTILINE)
    assert set(listed) == operations | {("GET", "/docs")} and len(listed) == len(operations) + 1


def test_the_console_hears_what_health_says(photo, monkeypatch, capsys):
    """Why YuNet is not used and why a saved calibration is ignored: on /health and as warning lines."""
    monkeypatch.setattr(detection, "YUNET_MODEL", photo.with_name("gone.onnx"))
    foreign = Calibration(baseline=(0.0,) * 7, model_id="another model's hash", model_name="theirs.onnx", frames=12,
                          created="2026-01-01T00:00:00+00:00")
    foreign.save(saved_calibration_path())

    def recognizer() -> EmotionRecognizer:
        return EmotionRecognizer(device="cpu", calibration=Calibration.load(saved_calibration_path()))

    with client(create(photo, recognizer=recognizer)) as api:
        health = wait_for(api, "/health", lambda body: "calibrated" in body)
        assert health["detector"] == "Haar cascade" and health["detector_note"].startswith("YuNet unavailable")
        assert "measured with another model (theirs.onnx)" in health["calibration_note"]
        assert health["calibrated"] is False
        warnings = capsys.readouterr().err.splitlines()
        assert f"warning: {health['detector_note']}" in warnings
        assert f"warning: {health['calibration_note']}" in warnings
        reset = api.delete("/calibrate").json()
        assert reset == {"calibrated": False, "message": f"Calibration deleted: {saved_calibration_path()}."}
        assert "calibration_note" not in api.get("/health").json() and not saved_calibration_path().exists()


def test_calibrate_needs_a_live_source():
    with client(create(None)) as api:
        assert_error(api.post("/calibrate"), 404, "No live source")
        assert api.delete("/calibrate").json()["message"].startswith("No calibration was saved")


@needs(FERPLUS_ZIP)
def test_a_capture_that_is_not_a_resting_face_is_refused_and_saves_nothing(photo, tmp_path, decided_model):
    def recognizer() -> EmotionRecognizer:  # a model that can be calibrated, so the capture itself is judged
        return EmotionRecognizer(decided_model, device="cpu", detector="haar", backend="torch")

    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((480, 640, 3), 120, np.uint8))
    with client(create(wall, recognizer=recognizer)) as api:
        assert_error(api.post("/calibrate"), 422, "No face found: sit in front of the camera")
        assert api.get("/health").json()["calibrated"] is False
    with client(create(photo, recognizer=recognizer)) as api:
        assert_error(api.post("/calibrate"), 422, "That looks like a smile, not a resting face")
    assert not saved_calibration_path().exists()


def test_a_model_without_a_typical_neutral_cannot_be_calibrated_and_says_so(photo, tiny_checkpoint):
    def untyped() -> EmotionRecognizer:  # an untrained model written without training.decide's typical neutral
        return EmotionRecognizer(tiny_checkpoint, device="cpu", detector="haar", backend="torch")

    with client(create(photo, recognizer=untyped)) as api:
        assert_error(api.post("/calibrate"), 422, "This model (tiny.pt) stores no typical neutral face")
        assert api.get("/health").json()["calibrated"] is False
    assert not saved_calibration_path().exists()


@needs(FERPLUS_ZIP)
def test_a_capture_of_a_resting_face_is_saved_and_used_until_deleted(neutral_photo, decided_model, tmp_path):
    def recognizer() -> EmotionRecognizer:
        return EmotionRecognizer(decided_model, device="cpu", detector="haar", backend="torch")

    mine = tmp_path / "mine.json"  # --calibration FILE: saved there, not in the config folder
    with client(create(neutral_photo, recognizer=recognizer, calibration_file=mine)) as api:

        def analyzed() -> dict[str, float]:
            return api.post("/analyze", content=neutral_photo.read_bytes()).json()["faces"][0]["probabilities"]

        uncalibrated = analyzed()
        wait_for_mood(api)
        answers = []
        capture = threading.Thread(target=lambda: answers.append(api.post("/calibrate")))
        capture.start()
        time.sleep(0.3)
        assert_error(api.post("/calibrate"), 409, "already being captured")
        assert_error(api.delete("/calibrate"), 409, "being captured")
        assert api.get("/health").status_code == 200  # the capture holds up nobody
        capture.join(30)
        (calibrated,) = answers
        assert calibrated.status_code == 200, calibrated.text
        body = calibrated.json()
        # The live source is a photo: judged alone and at once, as every way of calibrating a still is
        assert body == {"calibrated": True, "message": "Calibrated on 1 photo of your neutral face.", "frames": 1}
        assert stat.S_IMODE(mine.stat().st_mode) == 0o600 and Calibration.load(mine).frames == body["frames"]
        assert not saved_calibration_path().exists()
        assert api.get("/health").json()["calibrated"] is True
        assert analyzed() != uncalibrated  # /analyze reads the face as the live source now does
        assert api.delete("/calibrate").json()["message"] == f"Calibration deleted: {mine}."
        assert not mine.exists() and api.get("/health").json()["calibrated"] is False
        assert analyzed() == pytest.approx(uncalibrated)


def test_playlist_for_the_current_mood(photo, fake_spotify):
    with client(create(photo)) as api:
        wait_for_mood(api)
        not_signed_in = api.post("/playlist", json={"mood": "current", "dry_run": True})
        assert_error(not_signed_in, 409, "Not signed in to Spotify; run `moodtunes playlist --mood happy` once")
        SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
        made = api.post("/playlist", json={"mood": "current", "dry_run": True}).json()
        assert made["mood"] == "happy" and len(made["tracks"]) == 25 and made["url"] is None
        created = api.post("/playlist", json={"mood": "sad", "strategy": "lift"}).json()
        assert created["track_count"] == 25 and created["url"].startswith("https://open.spotify.com/playlist/")
        assert len(fake_spotify.playlists) == 1
        snapshot = api.get("/mood").json()
        assert len(snapshot["playlists"]) == 2 and snapshot["playlists"][-1] <= snapshot["t"]


def test_playlist_without_spotify_set_up_and_one_at_a_time(photo):
    release = threading.Event()

    def slow_make(*args, **kwargs):
        release.wait(10)
        return make_playlist(*args, **kwargs)

    with client(create(photo, make=slow_make)) as api:
        first = threading.Thread(target=lambda: api.post("/playlist", json={"mood": "happy"}))
        first.start()
        time.sleep(0.5)
        assert_error(api.post("/playlist", json={"mood": "happy"}), 409, "Already making a playlist")
        release.set()
        first.join(10)
        unconfigured = api.post("/playlist", json={"mood": "happy"})
        assert_error(unconfigured, 409, "Spotify is not set up")
        assert all(f" {i}) " in unconfigured.json()["error"] for i in range(1, len(SETUP_STEPS) + 1))  # every step
        assert unconfigured.json()["web_search"].startswith("https://open.spotify.com/search/")


def test_no_live_source():
    with client(create(None)) as api:
        assert api.get("/health").json()["source"]["state"] == "none"
        assert_error(api.get("/mood"), 404, "No live source")
        assert_error(api.get("/events"), 404, "No live source")
        assert_error(api.post("/playlist", json={"mood": "current"}), 409, "No mood yet")


def test_a_failing_source_is_reported(tmp_path, capsys):
    with client(create(tmp_path / "missing.mp4")) as api:
        health = wait_for(api, "/health", lambda body: body["source"]["state"] == "failed", timeout=10)
        assert health["status"] == "failed" and "Source not found" in health["source"]["error"]
        assert_error(api.get("/mood"), 503, "Source not found")
        assert_error(api.post("/calibrate"), 503, "Source not found")
    assert f"warning: the live source stopped: {health['source']['error']}" in capsys.readouterr().err.splitlines()


def read_events(response: requests.Response, count: int, lines=None) -> list[dict]:
    """``count`` events; pass the response's line iterator to keep it (and the connection) alive after."""
    events, lines = [], lines or response.iter_lines(decode_unicode=True)
    while len(events) < count:
        line = next(lines)
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


def test_events_stream_the_mood_at_a_bounded_rate(photo):
    with start(photo) as server:
        wait_for_mood(server)
        started = time.monotonic()
        with requests.get(server.base + "/events", stream=True, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response, 3)
        assert all(e["mood"]["label"] == "happy" for e in events)
        assert len({e["version"] for e in events}) == 3  # each event is news
        assert time.monotonic() - started >= 0.2  # at most one per 100 ms


def test_fifty_listeners_at_once_and_nothing_left_behind(photo):
    with start(photo, max_listeners=60) as server:
        state = server.app.state.server
        wait_for_mood(server)
        received = [0] * 50
        responses = [requests.get(server.base + "/events", stream=True, timeout=10) for _ in range(50)]
        lines = [r.iter_lines(decode_unicode=True) for r in responses]

        def listen(i: int) -> None:
            received[i] = len(read_events(responses[i], 2, lines[i]))

        threads = [threading.Thread(target=listen, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert received == [2] * 50
        assert state.listeners == 50
        extra = [requests.get(server.base + "/events", stream=True, timeout=10) for _ in range(10)]
        assert_error(requests.get(server.base + "/events", stream=True, timeout=10), 503, "listeners")
        for response in responses + extra:
            response.close()
        deadline = time.monotonic() + 10
        while state.listeners and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.listeners == 0  # every stream ended with its client


def test_a_slow_client_holds_nobody_up_and_times_out(photo):
    with start(photo, body_timeout_s=2) as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        started = time.monotonic()
        assert server.get("/health").status_code == 200
        assert time.monotonic() - started < 1  # answered while the slow body trickles
        for _ in range(3):
            slow.sendall(b"x")
            time.sleep(0.5)
        reply = read_reply(slow)
        assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in reply
        slow.close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt-get install chromium)")


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, profile) -> None:
        import websocket

        port = free_port()
        # The flags that keep Chromium from calling home on a machine without internet.
        self.process = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                         "--disable-background-networking", "--disable-component-update",
                                         "--disable-sync", "--disable-quic", f"--user-data-dir={profile}",
                                         f"--remote-debugging-port={port}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                pages = [t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                         if t["type"] == "page"]
                if pages:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "Chromium did not start"
            time.sleep(0.1)
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
        self.calls = 0

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.calls:
                return reply.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        """``expression``'s value once it is truthy (the last value after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)


def rgb(colour: str) -> str:
    """"#rrggbb" as the browser writes it back."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@needs_chromium
def test_the_overlay_page_draws_the_mood_and_bars_that_mood_reports(photo, tmp_path):
    with start(photo) as server, Browser(tmp_path / "profile") as browser:
        reported = wait_for_mood(server)["mood"]
        browser.call("Page.navigate", url=server.base + "/?transparent=1")
        browser.wait_for("document.getElementById('mood').dataset.label")
        time.sleep(0.5)  # the bars' 0.2 s transition
        shown = browser.evaluate("""(() => {
            const mood = document.getElementById('mood');
            const bars = [...document.querySelectorAll('.bar')].map((bar) => ({
                name: bar.querySelector('.name').textContent, value: bar.querySelector('.value').textContent,
                drawn: bar.querySelector('.fill').getBoundingClientRect().width,
                track: bar.querySelector('.track').getBoundingClientRect().width}));
            return {label: mood.dataset.label, text: mood.textContent, colour: mood.style.background,
                    transparent: document.body.classList.contains('transparent'), bars: bars};
        })()""")
    assert shown["label"] == reported["label"] == "happy" and shown["text"] == "Happy"
    assert shown["transparent"] and [bar["name"] for bar in shown["bars"]] == list(EMOTIONS)
    for bar in shown["bars"]:  # each bar is drawn as long as its probability says
        probability = reported["probabilities"][bar["name"]]
        assert bar["value"] == f"{round(100 * probability)}%"
        assert bar["track"] > 100 and bar["drawn"] / bar["track"] == pytest.approx(probability, abs=0.01)
    assert shown["colour"] == rgb(STYLES["happy"].colour)


@needs_chromium
def test_the_overlay_page_strip_shows_the_recent_mood_and_playlists(photo, tmp_path, fake_spotify):
    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
    with start(photo) as server, Browser(tmp_path / "profile") as browser:
        wait_for_mood(server)
        browser.call("Page.navigate", url=server.base + "/")
        strip = """[...document.querySelectorAll('#strip .segment')].map((s) => ({label: s.dataset.label,
                       colour: s.style.background, width: s.getBoundingClientRect().width}))"""
        segments = browser.wait_for(f"(() => {{ const s = {strip}; return s.length && s[0].width >= 1 && s; }})()")
        assert segments and {s["label"] for s in segments} == {"happy"}
        assert {s["colour"] for s in segments} == {rgb(STYLES["happy"].colour)}
        ticks = browser.evaluate("[...document.querySelectorAll('#axis span')].map((s) => s.textContent)")
        assert ticks == ["-5 min", "-4 min", "-3 min", "-2 min", "-1 min", "now"]
        assert browser.evaluate("document.querySelectorAll('#strip .mark').length") == 0
        assert server.post("/playlist", json={"mood": "current", "dry_run": True}).status_code == 200
        mark = browser.wait_for("""(() => { const mark = document.querySelector('#strip .mark');
            if (!mark) return null;
            const strip = document.getElementById('strip').getBoundingClientRect();
            return (mark.getBoundingClientRect().left - strip.left) / strip.width; })()""", timeout=10)
    assert mark is not None and 0.97 < mark <= 1.0  # a moment ago, at the "now" end


@needs_chromium
def test_docs_render_with_no_file_from_the_internet(tmp_path):
    with start(None) as server, Browser(tmp_path / "profile") as browser:
        operations = sum(len(methods) for methods in server.get("/openapi.json").json()["paths"].values())
        browser.call("Page.navigate", url=server.base + "/docs")
        drawn = browser.wait_for(f"document.querySelectorAll('.opblock').length === {operations}", timeout=60)
        loaded = browser.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")
    assert drawn and loaded and all(url.startswith(server.base + "/") for url in loaded)
