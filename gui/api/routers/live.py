"""The live source's mood, now and as a stream of Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent

from gui.api.errors import ApiError
from gui.api.models import MoodSnapshot, errors
from gui.api.state import ServerStateDep, listener_slot, require_live_source

router = APIRouter()


@router.get("/mood", dependencies=[Depends(require_live_source)], response_model_exclude_unset=True,
            summary="The live source's current smoothed mood",
            responses=errors({404: "No live source", 503: "The live source stopped"}))
async def mood(state: ServerStateDep) -> MoodSnapshot:
    """The live source's current smoothed mood."""
    snapshot = state.live.snapshot()
    if snapshot.state == "failed":
        raise ApiError(503, f"The live source stopped: {snapshot.error}")
    return snapshot


@router.get("/events", response_class=EventSourceResponse,
            dependencies=[Depends(require_live_source), Depends(listener_slot)],
            summary="Server-Sent Events: that mood, at most every --events-interval-ms",
            responses=errors({404: "No live source", 503: "Too many listeners"}))
async def events(state: ServerStateDep) -> AsyncIterable[ServerSentEvent]:
    """Server-Sent Events named `mood`, each the /mood snapshot: the one now, then every change, at most
    every --events-interval-ms, and a `: ping` comment after 15 s without one, until the server stops.

    Every listener reads the same snapshot, so there is no queue per listener to fill up."""
    interval = state.settings.events_interval_ms / 1000
    seen = -1
    while not state.stopping:
        snapshot = state.live.snapshot()
        if snapshot.version != seen:
            seen = snapshot.version
            yield ServerSentEvent(event="mood", raw_data=snapshot.model_dump_json(exclude_unset=True))
        await asyncio.sleep(interval)
