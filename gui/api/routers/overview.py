"""The overlay page, the server's health and the emotion classes."""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from emotion.classes import EMOTIONS, STYLES
from gui.api.models import EmotionInfo, Health, SourceHealth
from gui.api.state import ServerStateDep

router = APIRouter()


@router.get("/", response_class=HTMLResponse,
            summary="The overlay page: the live mood, its 7 bars and a strip of the last minutes")
async def overlay() -> HTMLResponse:
    """The live mood in its colour, the 7 probability bars and the mood of the last minutes, from /events.
    ``?transparent=1`` drops the background, for a browser source in streaming software."""
    return HTMLResponse(files("gui").joinpath("overlay.html").read_text(encoding="utf-8"))


@router.get("/health", response_model_exclude_unset=True,
            summary="Model, detector, device, backend, calibration, uptime, the live source's state")
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


@router.get("/emotions", summary="The classes, their colours and places on the circumplex")
async def emotions() -> list[EmotionInfo]:
    """The 7 classes in the model's order, with their colours and places on the circumplex."""
    return [EmotionInfo(name=name, colour=STYLES[name].colour, valence=STYLES[name].valence,
                        arousal=STYLES[name].arousal) for name in EMOTIONS]
