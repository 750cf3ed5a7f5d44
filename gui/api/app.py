"""The app factory: the shared state, the live source's life, the routers, the guard and the docs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from emotion.cli import warn
from emotion.live import EngineInfo, LiveAnalysis
from emotion.pipeline import EmotionPipeline, FrameAnalysis
from emotion.recognizer import EmotionRecognizer
from emotion.sources import Frame, FrameSource, Warn
from gui.api.errors import EXCEPTION_HANDLERS
from gui.api.guard import DOCS_ASSETS, Guard
from gui.api.models import errors
from gui.api.routers import ROUTERS
from gui.api.settings import ServeSettings
from gui.api.state import LiveMood, ServerState

if TYPE_CHECKING:
    from playlist.make import PlaylistResult

DOCS = ("GET", "/docs", "Every endpoint and its schemas (OpenAPI), served from this computer")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The live source's analysis, and the DJ it feeds, run as long as the server does."""
    live_analysis = app.state.server.live_analysis
    if live_analysis is not None:
        live_analysis.start()
    yield
    if live_analysis is not None:
        live_analysis.stop(timeout=2.0)
    app.state.server.dj.close()  # a request to Spotify in flight is abandoned, never waited for


def create_app(settings: ServeSettings, make_recognizer: Callable[[], EmotionRecognizer],
               open_source: Callable[[Warn], FrameSource] | None,
               make_playlist: Callable[..., PlaylistResult] | None = None) -> FastAPI:
    """The API. ``open_source`` None: no live source (``/mood``, ``/events`` and ``/calibrate`` then say so)."""
    if make_playlist is None:
        from playlist.make import make_playlist
    from gui.api.dj import ServerDJ  # with the playlist code: not for `moodtunes serve --help`

    live = LiveMood(has_source=open_source is not None)
    dj = ServerDJ.create(settings, make_playlist, has_source=open_source is not None, say=warn)
    state = ServerState(settings, make_recognizer, make_playlist, live, live_analysis=None, dj=dj)

    def frame(item: Frame, analysis: FrameAnalysis, fps: float | None) -> None:
        live.frame(item, analysis, fps)
        dj.observe(analysis.timestamp, analysis.mood.label if analysis.mood else None)  # decides; never waits

    def ready(info: EngineInfo) -> None:
        live.ready(info)
        for note in (info.note, info.calibration_note):  # what /health says, on the console too
            state.tell(note)

    def failed(message: str) -> None:
        live.failed(message)
        warn(f"the live source stopped: {message}")

    if open_source is not None:
        state.live_analysis = LiveAnalysis(open_source, lambda: EmotionPipeline(make_recognizer()), frame,
                                           on_ready=ready, on_failed=failed, on_finished=live.finished,
                                           on_warning=warn, name="live-source")
    # FastAPIOffline is FastAPI with its "self-hosting JavaScript and CSS for docs" recipe done:
    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package, not from a CDN.
    app = FastAPIOffline(
        title="moodtunes", summary="The mood on the face in front of the camera, and playlists for it.",
        lifespan=lifespan, static_url=DOCS_ASSETS, docs_url=DOCS[1], exception_handlers=EXCEPTION_HANDLERS,
        # Any endpoint may be refused (not addressed to localhost 400, no token 401, a POST from another
        # web page 403); this also stands for FastAPI's 422, which this API answers as 400.
        responses=errors({"4XX": "Refused, or a bad request: the line says why",
                          "5XX": "An internal error, or the live source stopped"}),
    )
    app.state.server = state
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(Guard, settings=settings)
    return app


def endpoints() -> list[tuple[str, str, str]]:
    """Every endpoint as (method, path, summary), in the order /docs lists them: `moodtunes serve --help`
    prints this list."""
    routes = [(method, route.path, route.summary) for router in ROUTERS for route in router.routes
              for method in sorted(route.methods)]
    return [*routes, DOCS]
