"""moodtunes' local HTTP API and live overlay page: ``moodtunes serve``.

    GET  /          the overlay page: the live mood and its 7 bars (?transparent=1 for streaming software)
    GET  /health    model, detector, device, backend, uptime, the live source's state
    GET  /emotions  the classes, their colours and places on the circumplex
    POST /analyze   an image in the body -> its faces, boxes and probabilities (as --headless prints them)
    GET  /mood      the live source's current smoothed mood
    GET  /events    Server-Sent Events: that mood, at most every --events-interval-ms
    POST /playlist  {"mood": "happy" | "current", "strategy", "dry_run", "new"} -> the playlist

It binds to 127.0.0.1 and answers only requests addressed to a loopback name (a web page cannot
reach it through DNS rebinding), and refuses POSTs from other web origins (a web page cannot
make playlists in your account). Another interface needs --host and a token, sent as
``Authorization: Bearer <token>`` or ``?token=<token>``. Bodies, pixels, body reads and
``/events`` listeners are limited; every error is JSON with a one-line ``error``, never a
traceback. The live source is opened once, on a thread of its own, and shared by every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import sys
import threading
import time
import traceback
import urllib.parse
import webbrowser
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from emotion.classes import EMOTIONS, STYLES
from emotion.cli import warn
from emotion.errors import MoodtunesError
from emotion.live import EngineInfo, LiveAnalysis
from emotion.pipeline import EmotionPipeline, FrameAnalysis
from emotion.recognizer import EmotionRecognizer
from emotion.sources import Frame, FrameSource, ImageTooLarge, SourceError, Warn, decode_image
from playlist.profiles import STRATEGIES

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
KEEP_ALIVE_S = 15.0


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    events_interval_ms: int = 250
    max_listeners: int = 64
    max_upload_bytes: int = 20 * 2**20
    body_timeout_s: float = 15.0

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_NAMES


class ApiError(Exception):
    """An answer with a status and a one-line message."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.extra = status, extra


class LiveMood:
    """What the live source shows now: the newest frozen analysis and the source's state (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.analysis: FrameAnalysis | None = None
        self.info: EngineInfo | None = None
        self.state = "starting"  # starting, running, ended, failed, none
        self.error = ""
        self.version = 0

    def ready(self, info: EngineInfo) -> None:
        with self._lock:
            self.info, self.state = info, "running"

    def frame(self, item: Frame, analysis: FrameAnalysis, fps: float | None) -> None:
        with self._lock:
            self.analysis, self.version = analysis, self.version + 1

    def failed(self, message: str) -> None:
        with self._lock:
            self.state, self.error = "failed", message
            self.version += 1

    def finished(self, kind: str) -> None:
        with self._lock:
            self.state = "ended"
            self.version += 1

    def snapshot(self) -> dict:
        with self._lock:
            analysis, state, error, version = self.analysis, self.state, self.error, self.version
        payload = {"state": state, "version": version, "mood": None, "faces": 0, "t": None}
        if error:
            payload["error"] = error
        if analysis is not None:
            payload.update(mood=analysis.mood.to_dict(analysis.timestamp) if analysis.mood else None,
                           faces=len(analysis.faces), t=round(analysis.timestamp, 3))
        return payload


class PlaylistRequest(BaseModel):
    mood: Literal[(*EMOTIONS, "current")] = "current"
    strategy: Literal[STRATEGIES] = "match"
    dry_run: bool = False
    new: bool = False


def create_app(settings: ServeSettings, make_recognizer: Callable[[], EmotionRecognizer],
               open_source: Callable[[Warn], FrameSource] | None, make_playlist: Callable | None = None) -> FastAPI:
    """The API. ``open_source`` None: no live source (``/mood`` and ``/events`` then say so)."""
    if make_playlist is None:
        from playlist.make import make_playlist
    started = time.monotonic()
    live = LiveMood()
    analyzer: list[EmotionRecognizer] = []  # /analyze's own recognizer, made on first use
    analyze_lock, playlist_lock = threading.Lock(), threading.Lock()
    listeners = [0]
    runner: list[LiveAnalysis] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if open_source is None:
            live.state = "none"
        else:
            runner.append(LiveAnalysis(open_source, lambda: EmotionPipeline(make_recognizer()), live.frame,
                                       on_ready=live.ready, on_failed=live.failed, on_finished=live.finished,
                                       on_warning=warn,
                                       name="live-source"))
            runner[0].start()
        yield
        for analysis in runner:
            analysis.stop(timeout=2.0)

    app = FastAPI(title="moodtunes", summary="The mood on the face in front of the camera, and playlists for it.",
                  lifespan=lifespan)

    # --- errors: always JSON, one line, no traceback ------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(int(exc.extra.pop("retry_after")))} if exc.extra.get("retry_after") else None
        return JSONResponse({"error": str(exc), **exc.extra}, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: f"No such endpoint: {request.url.path}. See /docs.",
                   405: f"{request.method} is not allowed on {request.url.path}."}.get(exc.status_code, str(exc.detail))
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"Invalid request: {problems}."}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        traceback.print_exception(exc)  # for whoever runs the server; the client gets one line
        return JSONResponse({"error": f"Internal error ({type(exc).__name__}); see the server's output."},
                            status_code=500)

    # --- endpoints ---------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def overlay() -> HTMLResponse:
        return HTMLResponse(files("gui").joinpath("overlay.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health() -> dict:
        snapshot = live.snapshot()
        info = live.info
        engine = ({"model": info.checkpoint, "detector": info.detector, "device": info.device,
                   "backend": info.backend} if info else {})
        return {"status": "ok" if snapshot["state"] in ("running", "ended", "none") else snapshot["state"],
                "uptime_s": round(time.monotonic() - started, 1), **engine,
                "source": {"name": info.source if info else None, "kind": info.source_kind if info else None,
                           "state": snapshot["state"], **({"error": snapshot["error"]} if "error" in snapshot else {})}}

    @app.get("/emotions")
    async def emotions() -> list[dict]:
        return [{"name": name, "colour": STYLES[name].colour, "valence": STYLES[name].valence,
                 "arousal": STYLES[name].arousal} for name in EMOTIONS]

    @app.post("/analyze")
    async def analyze(request: Request) -> dict:
        data = await read_body(request, settings)
        notes: list[str] = []

        def work() -> tuple[tuple[int, ...], list]:
            picture = decode_image(data, "the uploaded image", warn=notes.append)
            with analyze_lock:  # one OpenCV network is not for two threads at once
                if not analyzer:
                    analyzer.append(make_recognizer())
                return picture, analyzer[0].analyze(picture.image)

        try:
            picture, faces = await run_in_threadpool(work)
        except ImageTooLarge as exc:
            raise ApiError(413, str(exc)) from exc
        except SourceError as exc:
            raise ApiError(400, str(exc)) from exc
        # Boxes and size in the uploaded image's own pixels, even when a huge JPEG was decoded reduced.
        height, width = (round(side * picture.scale) for side in picture.image.shape[:2])
        return {"width": width, "height": height, "faces": [face.to_dict(picture.scale) for face in faces],
                "notes": notes}

    @app.get("/mood")
    async def mood() -> dict:
        snapshot = live.snapshot()
        require_source(live)
        if snapshot["state"] == "failed":
            raise ApiError(503, f"The live source stopped: {snapshot['error']}")
        return snapshot

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        require_source(live)
        if listeners[0] >= settings.max_listeners:
            raise ApiError(503, f"Already {settings.max_listeners} listeners; try again later.")
        return StreamingResponse(mood_events(live, listeners, settings.events_interval_ms / 1000),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/playlist")
    async def playlist(body: PlaylistRequest) -> dict:
        emotion, confidence = body.mood, None
        if emotion == "current":
            current = live.snapshot()["mood"]
            if current is None:
                raise ApiError(409, "No mood yet: nobody has been in front of the camera for a few seconds.")
            emotion, confidence = current["label"], current["confidence"]
        if not playlist_lock.acquire(blocking=False):
            raise ApiError(409, "Already making a playlist; wait for it to finish.")
        try:
            result = await run_in_threadpool(
                make_playlist, emotion, confidence, body.strategy, dry_run=body.dry_run, new=body.new,
                sign_in=False, open_url=webbrowser.open,
                again="run `moodtunes playlist --mood happy` once", new_hint=' (send "new": true for another)')
        except MoodtunesError as exc:
            raise playlist_error(exc, emotion) from exc
        finally:
            playlist_lock.release()
        return {"name": result.name, "url": result.url, "track_count": result.track_count,
                "tracks": [str(t) for t in result.tracks], "notes": result.notes, "reused": result.reused,
                "mood": emotion, "strategy": body.strategy, "dry_run": body.dry_run}

    app.add_middleware(Guard, settings=settings)
    app.state.live = live
    app.state.listeners = listeners
    return app


async def mood_events(live: LiveMood, listeners: list[int], interval: float) -> AsyncIterator[str]:
    """The mood now, then each change, at most every ``interval`` s, with keep-alive comments.

    Every listener reads the same snapshot (no per-listener queue to fill up); the count is
    given back when the client goes, however it goes (Starlette cancels the stream).
    """
    listeners[0] += 1
    try:
        seen, quiet_since = -1, time.monotonic()
        while True:
            snapshot = live.snapshot()
            if snapshot["version"] != seen:
                seen, quiet_since = snapshot["version"], time.monotonic()
                yield f"event: mood\ndata: {json.dumps(snapshot)}\n\n"
            elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(interval)
    finally:
        listeners[0] -= 1


def require_source(live: LiveMood) -> None:
    if live.state == "none":
        raise ApiError(404, "No live source: start the server with --camera N or --source FILE.")


def playlist_error(exc: MoodtunesError, emotion: str) -> ApiError:
    from playlist.make import web_search_url
    from playlist.spotify import NotConfigured, RateLimited, SignInRequired, SpotifyError

    if isinstance(exc, NotConfigured):
        return ApiError(409, str(exc), web_search=web_search_url(emotion))
    if isinstance(exc, SignInRequired):
        return ApiError(409, str(exc))
    if isinstance(exc, RateLimited):
        return ApiError(429, str(exc), **({"retry_after": exc.retry_after} if exc.retry_after else {}))
    if isinstance(exc, SpotifyError):
        return ApiError(502, str(exc))
    return ApiError(400, str(exc))


async def read_body(request: Request, settings: ServeSettings) -> bytes:
    """The request body, within the size limit and the time limit (a slow client cannot hold a worker)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise ApiError(413, f"The body is larger than {settings.max_upload_bytes // 2**20} MB.")
    chunks, size = [], 0

    async def receive_all() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_upload_bytes:
                raise ApiError(413, f"The body is larger than {settings.max_upload_bytes // 2**20} MB.")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive_all(), settings.body_timeout_s)
    except TimeoutError as exc:
        raise ApiError(408, f"The body did not arrive within {settings.body_timeout_s:.0f} s.") from exc
    if not size:
        raise ApiError(400, "Send an image (JPEG, PNG, ...) as the request body.")
    return b"".join(chunks)


class Guard:
    """ASGI middleware: loopback names only (when bound to loopback), the token (when one is set),
    and no POSTs from other web origins. Refusals are JSON like every other answer."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.problem(scope)
            if problem is not None:
                await JSONResponse({"error": problem[1]}, status_code=problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not host.endswith("]"):  # "[::1]" has no port to drop
            host = host.rsplit(":", 1)[0]
        if self.settings.loopback and host not in LOOPBACK_NAMES:
            # DNS rebinding: a page at evil.example that resolves to 127.0.0.1 still sends its own name.
            return 400, f"This server answers requests for 127.0.0.1 or localhost only, not {host or 'no host'}."
        if self.settings.token:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or query.get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), self.settings.token.encode()):
                return 401, "A token is needed: send Authorization: Bearer <token>, or ?token=<token>."
        origin = headers.get("origin")
        if scope["method"] == "POST" and origin and origin.split("://", 1)[-1] != headers.get("host"):
            return 403, "Requests from other web pages are refused."
        return None


def serve(settings: ServeSettings, make_recognizer: Callable[[], EmotionRecognizer],
          open_source: Callable[[Warn], FrameSource] | None) -> int:
    """Run the API until Ctrl-C (or SIGTERM)."""
    import uvicorn

    app = create_app(settings, make_recognizer, open_source)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"moodtunes API on http://{host}:{settings.port}/ (the overlay page; /docs lists the endpoints). "
          "Ctrl-C stops it.", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            timeout_graceful_shutdown=1, timeout_keep_alive=5,
                            limit_concurrency=settings.max_listeners + 32)
    uvicorn.Server(config).run()
    return 0
