"""The local API over real HTTP: every endpoint, every kind of bad input, a slow client, 50 listeners."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import zlib

import cv2
import pytest
import requests
import uvicorn
from clips import face_scene
from conftest import ROOT, free_port
from fake_spotify import consent_in_browser

from emotion.classes import EMOTIONS, STYLES
from emotion.recognizer import EmotionRecognizer
from emotion.sources import open_source
from gui.server import ServeSettings, create_app
from playlist.make import make_playlist
from playlist.spotify import SpotifyAuth, load_config


class Server:
    """The app on a real socket, served by uvicorn on a thread of its own."""

    def __init__(self, app, port: int) -> None:
        self.app, self.port = app, port
        self.base = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
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


def start(photo, make=make_playlist, **settings) -> Server:
    settings = ServeSettings(port=free_port(), events_interval_ms=100, **settings)
    app = create_app(settings, lambda: EmotionRecognizer(device="cpu", detector="haar"),
                     lambda warn: open_source(photo, loop=True, warn=warn), make_playlist=make)
    return Server(app, settings.port)


def wait_for_mood(server: Server) -> dict:
    deadline = time.monotonic() + 20
    while True:
        body = server.get("/mood").json()
        if body["mood"] or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def assert_error(response: requests.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"} and text in body["error"] and "Traceback" not in response.text


def test_health_emotions_mood_and_analyze(photo):
    with start(photo) as server:
        mood = wait_for_mood(server)
        assert mood["mood"]["label"] == "happy" and mood["faces"] == 1 and mood["state"] == "running"
        health = server.get("/health").json()
        assert health["status"] == "ok" and health["backend"] == "opencv" and health["device"] == "cpu"
        assert health["detector"] == "Haar cascade" and health["model"] == "emotion_ferplus.onnx"
        assert health["source"] == {"name": str(photo), "kind": "photos", "state": "running"}
        assert health["uptime_s"] >= 0
        emotions = server.get("/emotions").json()
        assert [e["name"] for e in emotions] == list(EMOTIONS)
        assert emotions[3]["colour"] == STYLES["happy"].colour
        analyzed = server.post("/analyze", data=photo.read_bytes()).json()
        (face,) = analyzed["faces"]
        assert (analyzed["width"], analyzed["height"]) == (640, 480)
        assert face["label"] == "happy" and set(face) == {"box", "label", "confidence", "probabilities"}
        assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that says width x height: the header is all a size check reads."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))


def test_bad_input_is_a_4xx_json_with_a_message(photo):
    with start(photo, max_upload_bytes=200_000) as server:
        assert_error(server.post("/analyze", data=b"not an image"), 400, "not an image")
        assert_error(server.post("/analyze", data=b""), 400, "Send an image")
        assert_error(server.post("/analyze", data=b"x" * 300_000), 413, "larger than")
        assert_error(server.post("/analyze", data=png_header_only(10_000, 8_000)), 413, "80 megapixels")
        assert_error(server.post("/playlist", json={"mood": "elated"}), 400, "mood")
        assert_error(server.post("/playlist", data="{not json", headers={"Content-Type": "application/json"}), 400,
                     "Invalid request")
        assert_error(server.post("/playlist", json={"mood": "happy", "strategy": "sideways"}), 400, "strategy")
        assert_error(server.get("/nowhere"), 404, "No such endpoint")
        assert_error(server.get("/analyze"), 405, "not allowed")


def test_requests_from_elsewhere_are_refused(photo):
    with start(photo) as server:
        assert_error(server.get("/health", headers={"Host": "evil.example"}), 400, "127.0.0.1 or localhost")
        assert_error(server.post("/playlist", json={"mood": "happy"}, headers={"Origin": "http://evil.example"}),
                     403, "other web pages")
        assert server.get("/health", headers={"Host": f"localhost:{server.port}"}).status_code == 200


def test_a_token_when_one_is_set(photo):
    with start(photo, token="s3cret") as server:
        assert_error(server.get("/health"), 401, "token")
        assert server.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert server.get("/emotions?token=s3cret").status_code == 200
        assert_error(server.get("/health?token=wrong"), 401)


def test_another_interface_needs_a_token():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--host", "0.0.0.0", "--no-source"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--token" in result.stderr


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
        assert server.app.state.listeners[0] == 50
        extra = [requests.get(server.base + "/events", stream=True, timeout=10) for _ in range(10)]
        assert_error(requests.get(server.base + "/events", stream=True, timeout=10), 503, "listeners")
        for response in responses + extra:
            response.close()
        deadline = time.monotonic() + 10
        while server.app.state.listeners[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.app.state.listeners[0] == 0  # every stream ended with its client


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
        slow.settimeout(10)
        reply = b""
        while b"}" not in reply:  # headers and the JSON body may come in separate segments
            chunk = slow.recv(4096)
            if not chunk:
                break
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in reply
        slow.close()


def test_playlist_for_the_current_mood(photo, fake_spotify):
    with start(photo) as server:
        wait_for_mood(server)
        not_signed_in = server.post("/playlist", json={"mood": "current", "dry_run": True})
        assert_error(not_signed_in, 409, "Not signed in to Spotify; run `moodtunes playlist --mood happy` once")
        SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
        made = server.post("/playlist", json={"mood": "current", "dry_run": True}).json()
        assert made["mood"] == "happy" and len(made["tracks"]) == 25 and made["url"] is None
        created = server.post("/playlist", json={"mood": "sad", "strategy": "lift"}).json()
        assert created["track_count"] == 25 and created["url"].startswith("https://open.spotify.com/playlist/")
        assert len(fake_spotify.playlists) == 1


def test_playlist_without_spotify_set_up_and_one_at_a_time(photo):
    release = threading.Event()

    def slow_make(*args, **kwargs):
        release.wait(10)
        return make_playlist(*args, **kwargs)

    with start(photo, make=slow_make) as server:
        first = threading.Thread(target=lambda: server.post("/playlist", json={"mood": "happy"}))
        first.start()
        time.sleep(0.5)
        assert_error(server.post("/playlist", json={"mood": "happy"}), 409, "Already making a playlist")
        release.set()
        first.join(10)
        unconfigured = server.post("/playlist", json={"mood": "happy"})
        assert_error(unconfigured, 409, "Spotify is not set up")
        assert unconfigured.json()["web_search"].startswith("https://open.spotify.com/search/")


def test_no_live_source(tmp_path):
    settings = ServeSettings(port=free_port())
    app = create_app(settings, lambda: EmotionRecognizer(device="cpu", detector="haar"), None)
    with Server(app, settings.port) as server:
        assert server.get("/health").json()["source"]["state"] == "none"
        assert_error(server.get("/mood"), 404, "No live source")
        assert_error(server.get("/events"), 404, "No live source")
        assert_error(server.post("/playlist", json={"mood": "current"}), 409, "No mood yet")


def test_a_failing_source_is_reported(tmp_path):
    settings = ServeSettings(port=free_port())
    app = create_app(settings, lambda: EmotionRecognizer(device="cpu", detector="haar"),
                     lambda warn: open_source(tmp_path / "missing.mp4", warn=warn))
    with Server(app, settings.port) as server:
        deadline = time.monotonic() + 10
        while server.get("/health").json()["source"]["state"] != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
        health = server.get("/health").json()
        assert health["status"] == "failed" and "Source not found" in health["source"]["error"]
        assert_error(server.get("/mood"), 503, "Source not found")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


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

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.calls:
                return reply.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)


@pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_overlay_page_shows_the_mood_that_mood_reports(photo, tmp_path):
    with start(photo) as server:
        reported = wait_for_mood(server)["mood"]
        browser = Browser(tmp_path / "profile")
        try:
            browser.call("Page.navigate", url=server.base + "/?transparent=1")
            shown = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                shown = browser.evaluate("""(() => {
                    const mood = document.getElementById('mood');
                    const bars = [...document.querySelectorAll('.bar')].map(
                        (bar) => [bar.querySelector('.name').textContent, bar.querySelector('.value').textContent]);
                    return {label: mood.dataset.label, text: mood.textContent, colour: mood.style.background,
                            transparent: document.body.classList.contains('transparent'), bars: bars};
                })()""")
                if shown and shown["label"]:
                    break
                time.sleep(0.2)
        finally:
            browser.close()
    assert shown["label"] == reported["label"] == "happy" and shown["text"] == "Happy"
    assert shown["transparent"] and len(shown["bars"]) == 7
    assert dict(shown["bars"])["happy"] == f"{round(100 * reported['probabilities']['happy'])}%"
    r, g, b = (int(STYLES["happy"].colour[i : i + 2], 16) for i in (1, 3, 5))
    assert shown["colour"] == f"rgb({r}, {g}, {b})"
