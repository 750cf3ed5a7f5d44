"""moodtunes' local HTTP API and live overlay page: ``moodtunes serve``.

    GET    /           the overlay page: the live mood, its 7 bars and a strip of the last minutes
    GET    /health     model, detector, device, backend, calibration, uptime, the live source's state
    GET    /emotions   the classes, their colours and places on the circumplex
    POST   /analyze    an image in the body -> its faces, boxes and probabilities (as --headless prints them)
    GET    /mood       the live source's current smoothed mood
    GET    /events     Server-Sent Events: that mood, at most every --events-interval-ms
    POST   /playlist   {"mood": "happy" | "current", "strategy", "dry_run", "new"} -> the playlist
    POST   /calibrate  capture the face in front of the camera as its neutral (about 3 s)
    DELETE /calibrate  forget that calibration
    GET    /docs       every endpoint and its schemas (OpenAPI), with no file from the internet

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
import errno
import hmac
import socket
import sys
import threading
import time
import traceback
import urllib.parse
import webbrowser
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from emotion.calibration import (
    CAPTURE_SECONDS,
    Calibration,
    CalibrationError,
    delete_calibration,
    saved_calibration_path,
)
from emotion.classes import EMOTIONS, STYLES
from emotion.cli import warn
from emotion.errors import MoodtunesError
from emotion.live import EngineInfo, LiveAnalysis
from emotion.pipeline import EmotionPipeline, FrameAnalysis
from emotion.recognizer import EmotionRecognizer, FaceResult
from emotion.sources import Frame, FrameSource, ImageTooLarge, Picture, SourceError, Warn, decode_image
from gui.api_models import (
    PLAYLIST_MARKS,
    Analysis,
    Calibrated,
    CalibrationReset,
    EmotionInfo,
    Health,
    MoodSnapshot,
    PlaylistErrorResponse,
    PlaylistMade,
    PlaylistRequest,
    SmoothedMood,
    SourceHealth,
    SourceState,
    errors,
)

if TYPE_CHECKING:  # the playlist code loads with the first playlist
    from playlist.make import PlaylistResult

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's files, served from the fastapi-offline package
# The documentation says nothing of the user's: it is open without the token, so that /docs
# can load its page, its files and the schema in a browser that cannot send a header.
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json", DOCS_ASSETS + "/")
CAPTURE_TIMEOUT_S = CAPTURE_SECONDS + 5  # the capture, plus a slow first frame (photos come one a second)
TASK_TIMEOUT_S = 5.0  # for the analysis thread to take up a task: it does so before its next frame


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    events_interval_ms: int = 250
    max_listeners: int = 64
    max_upload_bytes: int = 20 * 2**20
    body_timeout_s: float = 15.0
    calibration_file: Path | None = None  # --calibration FILE: POST /calibrate saves there, not in the config folder

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_NAMES


# --- the state the endpoints share ---------------------------------------------------------------------


class ApiError(Exception):
    """An answer with a status and a one-line message."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.extra = status, extra


class LiveMood:
    """What the live source shows now: the newest frozen analysis, the source's state and the
    times playlists were made. The analysis thread writes it, the event loop reads it."""

    def __init__(self, has_source: bool) -> None:
        self._lock = threading.Lock()
        self.analysis: FrameAnalysis | None = None
        self.info: EngineInfo | None = None
        self.state: SourceState = "starting" if has_source else "none"
        self.error = ""
        self.calibration_note = ""  # why the saved calibration is not used, until another is made or reset
        self.version = 0  # one more for each change that /events listeners should hear of
        self._playlists: deque[float] = deque(maxlen=PLAYLIST_MARKS)

    def ready(self, info: EngineInfo) -> None:
        with self._lock:
            self.info, self.state, self.calibration_note = info, "running", info.calibration_note

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

    def playlist_made(self) -> None:
        """Mark now (the newest frame's time) as a playlist's, for the overlay's mood strip."""
        with self._lock:
            if self.analysis is not None:
                self._playlists.append(round(self.analysis.timestamp, 3))
                self.version += 1

    def snapshot(self) -> MoodSnapshot:
        with self._lock:
            analysis, state, error, version = self.analysis, self.state, self.error, self.version
            playlists = list(self._playlists)
        mood = None
        if analysis is not None and analysis.mood is not None:
            mood = SmoothedMood(**analysis.mood.to_dict(analysis.timestamp))
        return MoodSnapshot(state=state, version=version, mood=mood, faces=len(analysis.faces) if analysis else 0,
                            t=round(analysis.timestamp, 3) if analysis else None, playlists=playlists,
                            **({"error": error} if error else {}))


@dataclass
class ServerState:
    """What the endpoints share: on ``app.state.server``, handed to them by :func:`server_state`."""

    settings: ServeSettings
    make_recognizer: Callable[[], EmotionRecognizer]
    make_playlist: Callable[..., PlaylistResult]
    live: LiveMood
    live_analysis: LiveAnalysis | None  # the live source's thread; None without a source
    started: float = field(default_factory=time.monotonic)
    analyzer: EmotionRecognizer | None = None  # /analyze's own, see recognizer()
    analyze_lock: threading.Lock = field(default_factory=threading.Lock)  # one OpenCV network, one thread at a time
    making_playlist: asyncio.Lock = field(default_factory=asyncio.Lock)
    calibrating: asyncio.Lock = field(default_factory=asyncio.Lock)
    listeners: int = 0  # /events streams open now; changed on the event loop only
    told: set[str] = field(default_factory=set)
    # What POST or DELETE /calibrate chose, for /analyze's recognizer too, even one made after: the
    # file that make_recognizer() reads may not hold it (it could not be saved, or it was deleted).
    calibration_chosen: bool = False
    calibration: Calibration | None = None

    def tell(self, note: str) -> None:
        """A warning on the console, once: the live source's engine and /analyze's may have the same to say."""
        if note and note not in self.told:
            self.told.add(note)
            warn(note)

    def calibration_path(self) -> Path:
        return self.settings.calibration_file or saved_calibration_path()

    def use_calibration(self, calibration: Calibration | None) -> None:
        """/analyze reads faces as the live source does from now on (on a worker thread: waits for /analyze)."""
        with self.analyze_lock:
            self.calibration_chosen, self.calibration = True, calibration
            if self.analyzer is not None:
                self.analyzer.calibration = calibration

    def recognizer(self) -> EmotionRecognizer:
        """/analyze's recognizer, made on first use (hold ``analyze_lock``)."""
        if self.analyzer is None:
            self.analyzer = self.make_recognizer()
            if self.calibration_chosen:
                self.analyzer.calibration = self.calibration
            for note in (self.analyzer.detector.note, self.analyzer.calibration_note):
                self.tell(note)
        return self.analyzer


async def server_state(request: Request) -> ServerState:
    return request.app.state.server


ServerStateDep = Annotated[ServerState, Depends(server_state)]


async def require_live_source(state: ServerStateDep) -> None:
    if state.live_analysis is None:
        raise ApiError(404, "No live source: start the server with --camera N or --source FILE.")


async def listener_slot(state: ServerStateDep) -> AsyncIterator[None]:
    """A place among the /events listeners, held until the client goes, however it goes."""
    if state.listeners >= state.settings.max_listeners:
        raise ApiError(503, f"Already {state.settings.max_listeners} listeners; try again later.")
    state.listeners += 1
    try:
        yield
    finally:
        state.listeners -= 1


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The live source's analysis runs as long as the server does."""
    live_analysis = app.state.server.live_analysis
    if live_analysis is not None:
        live_analysis.start()
    yield
    if live_analysis is not None:
        live_analysis.stop(timeout=2.0)


# --- errors: always JSON, one line, no traceback --------------------------------------------------------


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(int(exc.extra.pop("retry_after")))} if exc.extra.get("retry_after") else None
    return JSONResponse({"error": str(exc), **exc.extra}, status_code=exc.status, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = {404: f"No such endpoint: {request.url.path}. See /docs.",
               405: f"{request.method} is not allowed on {request.url.path}."}.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
    return JSONResponse({"error": f"Invalid request: {problems}."}, status_code=400)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    traceback.print_exception(exc)  # for whoever runs the server; the client gets one line
    return JSONResponse({"error": f"Internal error ({type(exc).__name__}); see the server's output."}, status_code=500)


# --- endpoints -------------------------------------------------------------------------------------------

router = APIRouter()


@router.get("/", response_class=HTMLResponse, summary="The overlay page")
async def overlay() -> HTMLResponse:
    """The live mood in its colour, the 7 probability bars and the mood of the last minutes, from /events.
    ``?transparent=1`` drops the background, for a browser source in streaming software."""
    return HTMLResponse(files("gui").joinpath("overlay.html").read_text(encoding="utf-8"))


@router.get("/health", response_model_exclude_unset=True)
async def health(state: ServerStateDep) -> Health:
    """The engine, the calibration, the uptime and the live source's state."""
    snapshot, info, analysis = state.live.snapshot(), state.live.info, state.live.analysis
    engine: dict[str, Any] = {}
    if info is not None:
        engine = {"model": info.checkpoint, "detector": info.detector, "device": info.device, "backend": info.backend}
        if info.note:
            engine["detector_note"] = info.note
    if analysis is not None:
        engine["calibrated"] = analysis.calibrated
    if state.live.calibration_note:
        engine["calibration_note"] = state.live.calibration_note
    source = SourceHealth(name=info.source if info else None, kind=info.source_kind if info else None,
                          state=snapshot.state, **({"error": snapshot.error} if snapshot.error else {}))
    return Health(status="ok" if snapshot.state in ("running", "ended", "none") else snapshot.state,
                  uptime_s=round(time.monotonic() - state.started, 1), **engine, source=source)


@router.get("/emotions")
async def emotions() -> list[EmotionInfo]:
    """The 7 classes in the model's order, with their colours and places on the circumplex."""
    return [EmotionInfo(name=name, colour=STYLES[name].colour, valence=STYLES[name].valence,
                        arousal=STYLES[name].arousal) for name in EMOTIONS]


@router.post(
    "/analyze",
    openapi_extra={"requestBody": {"required": True, "description": "The image file's bytes, not a form.",
                                   "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}},
    responses=errors({400: "Not an image, or no body", 408: "The body came too slowly", 413: "Too large",
                      415: "A form (multipart) instead of the image's bytes",
                      503: "The recognizer cannot be made (its model, detector or calibration)"}),
)
async def analyze(request: Request, state: ServerStateDep) -> Analysis:
    """The faces in an image, with their boxes and probabilities: `curl --data-binary @photo.jpg`."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "Send the image's bytes as the body, not a form: curl --data-binary @photo.jpg "
                            f"-H 'Content-Type: image/jpeg' {request.url.replace(query='')}")
    data = await read_body(request, state.settings)
    notes: list[str] = []

    def work() -> tuple[Picture, list[FaceResult]]:
        picture = decode_image(data, "the uploaded image", warn=notes.append)
        with state.analyze_lock:
            return picture, state.recognizer().analyze(picture.image)

    try:
        picture, faces = await run_in_threadpool(work)
    except ImageTooLarge as exc:
        raise ApiError(413, str(exc)) from exc
    except SourceError as exc:
        raise ApiError(400, str(exc)) from exc
    except MoodtunesError as exc:  # the recognizer could not be made: its model, detector or calibration
        raise ApiError(503, str(exc)) from exc
    # Boxes and size in the uploaded image's own pixels, even when a huge JPEG was decoded reduced.
    height, width = (round(side * picture.reduction) for side in picture.image.shape[:2])
    return Analysis(width=width, height=height, faces=[face.to_dict(picture.reduction) for face in faces], notes=notes)


@router.get("/mood", dependencies=[Depends(require_live_source)], response_model_exclude_unset=True,
            responses=errors({404: "No live source", 503: "The live source stopped"}))
async def mood(state: ServerStateDep) -> MoodSnapshot:
    """The live source's current smoothed mood."""
    snapshot = state.live.snapshot()
    if snapshot.state == "failed":
        raise ApiError(503, f"The live source stopped: {snapshot.error}")
    return snapshot


@router.get("/events", response_class=EventSourceResponse,
            dependencies=[Depends(require_live_source), Depends(listener_slot)],
            responses=errors({404: "No live source", 503: "Too many listeners"}))
async def events(state: ServerStateDep) -> AsyncIterable[ServerSentEvent]:
    """Server-Sent Events named `mood`, each the /mood snapshot: the one now, then every change, at most
    every --events-interval-ms, and a `: ping` comment after 15 s without one.

    Every listener reads the same snapshot, so there is no queue per listener to fill up."""
    interval = state.settings.events_interval_ms / 1000
    seen = -1
    while True:
        snapshot = state.live.snapshot()
        if snapshot.version != seen:
            seen = snapshot.version
            yield ServerSentEvent(event="mood", raw_data=snapshot.model_dump_json(exclude_unset=True))
        await asyncio.sleep(interval)


@router.post("/playlist", responses={
    **errors({400: "An unknown mood or strategy, or a body that is not JSON", 502: "Spotify failed"}),
    **errors({409: "No mood yet, Spotify not set up or not signed in, or another playlist in the making",
              429: "Spotify's rate limit (see Retry-After)"}, model=PlaylistErrorResponse)})
async def playlist(body: PlaylistRequest, state: ServerStateDep) -> PlaylistMade:
    """A Spotify playlist for a mood, or for the live mood ("current"). It never opens a browser to sign in:
    sign in once with `moodtunes playlist --mood happy`."""
    emotion, confidence = body.mood, None
    if emotion == "current":
        current = state.live.snapshot().mood
        if current is None:
            raise ApiError(409, "No mood yet: nobody has been in front of the camera for a few seconds.")
        emotion, confidence = current.label, current.confidence
    if state.making_playlist.locked():
        raise ApiError(409, "Already making a playlist; wait for it to finish.")
    async with state.making_playlist:
        try:
            result = await run_in_threadpool(
                state.make_playlist, emotion, confidence, body.strategy, dry_run=body.dry_run, new=body.new,
                sign_in=False, open_url=webbrowser.open,
                again="run `moodtunes playlist --mood happy` once", new_hint=' (send "new": true for another)')
        except MoodtunesError as exc:
            raise playlist_error(exc, emotion) from exc
    state.live.playlist_made()
    return PlaylistMade(name=result.name, url=result.url, track_count=result.track_count,
                        tracks=[str(t) for t in result.tracks], notes=result.notes, reused=result.reused,
                        mood=emotion, strategy=body.strategy, dry_run=body.dry_run)


@router.post("/calibrate", dependencies=[Depends(require_live_source)], responses=errors({
    404: "No live source", 409: "A capture is already running, or the source has ended",
    422: "The capture is not one person's resting face, or the model cannot use a calibration: the line says "
         "why and what to do",
    503: "The live source stopped", 504: "The source gave no frames for the capture"}))
async def calibrate(state: ServerStateDep) -> Calibrated:
    """Capture the face in front of the camera for about 3 s as its neutral: ask the person to relax their
    face (mouth closed, no smile) and look at the camera first. Answers when the capture is over; a good
    one is saved (the config folder, or --calibration FILE) and used from then on."""
    live_analysis = running(state)
    if state.calibrating.locked():
        raise ApiError(409, "A calibration is already being captured; wait for it to finish.")
    async with state.calibrating:
        analysis = state.live.analysis
        before = analysis.calibration.number if analysis and analysis.calibration else 0
        path = state.calibration_path()
        live_analysis.submit(lambda pipeline: pipeline.start_calibration(save_to=path))
        analysis = await next_analysis(state, lambda a: bool(a.calibration and a.calibration.number > before
                                                             and a.calibration.state != "capturing"),
                                       CAPTURE_TIMEOUT_S, "the capture")
    if analysis is None:
        raise ApiError(503, f"The live source stopped during the capture: {state.live.error or 'it ended'}.")
    status = analysis.calibration
    if status.state == "failed":
        raise ApiError(422, status.message)
    state.live.calibration_note = ""
    await run_in_threadpool(state.use_calibration, status.calibration)
    return Calibrated(message=status.message, frames=status.calibration.frames)


@router.delete("/calibrate", responses=errors({409: "A capture is running", 504: "The live source is stuck"}))
async def forget_calibration(state: ServerStateDep) -> CalibrationReset:
    """Stop using the calibration, and delete the saved one."""
    if state.calibrating.locked():
        raise ApiError(409, "A calibration is being captured; wait for it to finish.")
    if state.live_analysis is not None and state.live_analysis.running:
        state.live_analysis.submit(lambda pipeline: pipeline.reset_calibration())
        await next_analysis(state, lambda a: not a.calibrated, TASK_TIMEOUT_S, "the reset")
    state.live.calibration_note = ""
    await run_in_threadpool(state.use_calibration, None)
    path = state.calibration_path()
    try:
        existed = delete_calibration(path)
    except CalibrationError as exc:
        raise ApiError(500, str(exc)) from exc
    return CalibrationReset(message=f"Calibration deleted: {path}." if existed
                            else f"No calibration was saved at {path}; none is used now.")


def running(state: ServerState) -> LiveAnalysis:
    """The live source's analysis, if it can still take work."""
    live_analysis, snapshot = state.live_analysis, state.live.snapshot()
    if snapshot.state == "failed":
        raise ApiError(503, f"The live source stopped: {snapshot.error}")
    if snapshot.state == "ended" or not live_analysis.running:
        raise ApiError(409, "The live source has ended: there is nothing left to capture (--loop keeps a video "
                            "playing).")
    return live_analysis


async def next_analysis(state: ServerState, ready: Callable[[FrameAnalysis], bool], timeout: float,
                        what: str) -> FrameAnalysis | None:
    """The newest analysis once ``ready`` holds for it (None if the source stops first); the event loop
    serves everyone else meanwhile. 504 after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        analysis = state.live.analysis
        if analysis is not None and ready(analysis):
            return analysis
        if not state.live_analysis.running:
            return None
        if time.monotonic() > deadline:
            raise ApiError(504, f"The live source gave no frames for {what} within {timeout:.0f} s.")
        await asyncio.sleep(0.05)


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
    except asyncio.TimeoutError as exc:  # TimeoutError itself from Python 3.11 on
        raise ApiError(408, f"The body did not arrive within {settings.body_timeout_s:.0f} s.") from exc
    if not size:
        raise ApiError(400, "Send an image (JPEG, PNG, ...) as the request body.")
    return b"".join(chunks)


class Guard:
    """ASGI middleware: loopback names only (when bound to loopback), the token (when one is set,
    except for the documentation), and no POSTs from other web origins. Refusals are JSON like
    every other answer."""

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
        if self.settings.token and not scope["path"].startswith(DOCS_PATHS):
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or query.get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), self.settings.token.encode()):
                return 401, "A token is needed: send Authorization: Bearer <token>, or ?token=<token>."
        origin = headers.get("origin")
        if scope["method"] == "POST" and origin and origin.split("://", 1)[-1] != headers.get("host"):
            return 403, "Requests from other web pages are refused."
        return None


def create_app(settings: ServeSettings, make_recognizer: Callable[[], EmotionRecognizer],
               open_source: Callable[[Warn], FrameSource] | None,
               make_playlist: Callable[..., PlaylistResult] | None = None) -> FastAPI:
    """The API. ``open_source`` None: no live source (``/mood``, ``/events`` and ``/calibrate`` then say so)."""
    if make_playlist is None:
        from playlist.make import make_playlist
    live = LiveMood(has_source=open_source is not None)
    state = ServerState(settings, make_recognizer, make_playlist, live, live_analysis=None)

    def ready(info: EngineInfo) -> None:
        live.ready(info)
        for note in (info.note, info.calibration_note):  # what /health says, on the console too
            state.tell(note)

    def failed(message: str) -> None:
        live.failed(message)
        warn(f"the live source stopped: {message}")

    if open_source is not None:
        state.live_analysis = LiveAnalysis(open_source, lambda: EmotionPipeline(make_recognizer()), live.frame,
                                           on_ready=ready, on_failed=failed, on_finished=live.finished,
                                           on_warning=warn, name="live-source")
    # FastAPIOffline is FastAPI with its "self-hosting JavaScript and CSS for docs" recipe done:
    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package, not from a CDN.
    app = FastAPIOffline(
        title="moodtunes", summary="The mood on the face in front of the camera, and playlists for it.",
        lifespan=lifespan, static_url=DOCS_ASSETS,
        exception_handlers={ApiError: api_error, StarletteHTTPException: http_error,
                            RequestValidationError: invalid_request, Exception: unexpected_error},
        # Any endpoint may be refused (not addressed to localhost 400, no token 401, a POST from another
        # web page 403); this also stands for FastAPI's 422, which this API answers as 400.
        responses=errors({"4XX": "Refused, or a bad request: the line says why",
                          "5XX": "An internal error, or the live source stopped"}),
    )
    app.state.server = state
    app.include_router(router)
    app.add_middleware(Guard, settings=settings)
    return app


def listen(settings: ServeSettings) -> socket.socket:
    """The server's socket, bound before anything is printed: a port in use is one error line."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise MoodtunesError(f"Port {settings.port} is already in use (another moodtunes serve?): choose "
                                 "another with --port.") from None
        raise MoodtunesError(f"Cannot listen on {settings.host} port {settings.port} ({exc.strerror or exc}): "
                             "check --host and --port.") from None
    return sock


def serve(settings: ServeSettings, make_recognizer: Callable[[], EmotionRecognizer],
          open_source: Callable[[Warn], FrameSource] | None) -> int:
    """Run the API until Ctrl-C (or SIGTERM)."""
    import uvicorn

    listening = listen(settings)
    app = create_app(settings, make_recognizer, open_source)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    port = listening.getsockname()[1]  # --port 0: the one the system chose
    print(f"moodtunes API on http://{host}:{port}/ (the overlay page; /docs lists the endpoints). "
          "Ctrl-C stops it.", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, timeout_keep_alive=5,
                            limit_concurrency=settings.max_listeners + 32)
    uvicorn.Server(config).run(sockets=[listening])
    return 0
