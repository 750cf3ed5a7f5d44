"""The DJ: what plays and for which mood, following the mood on and off, like and skip."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gui.api.errors import ApiError
from gui.api.models import DJActionInfo, DJPending, DJStatus, FollowRequest, HeldMood, PlayingTrack, errors
from gui.api.state import ServerState, ServerStateDep
from playlist.dj import ERROR, LIKE, SKIP, DJAction

if TYPE_CHECKING:  # the DJ's worker and the Spotify client load when the app is made, not for `serve --help`
    from gui.api.dj import ServerDJ

OUTCOME_TIMEOUT_S = 15.0  # like and skip answer once Spotify has; after this long, 202 and GET /dj tells the rest
# A refused like or skip, by what the user can do about it (DJAction.reason).
STATUS_OF_REASON = {"premium": 403, "no_device": 409, "sign_in": 409, "rate_limited": 429, "offline": 503}
REFUSALS = errors({403: "Spotify plays only for Premium accounts", 409: "Nothing from moodtunes plays, no Spotify is "
                   "open, or a sign-in or a permission is needed", 429: "Spotify's rate limit", 503: "Spotify "
                   "cannot be reached"})

router = APIRouter()


@router.get("/dj", summary="Now playing, the mood it was picked for, following on/off, the DJ's last actions")
async def dj(state: ServerStateDep) -> DJStatus:
    """The track playing (title, artist, link) and the mood it was picked for, the device, whether the music
    follows the mood, and the DJ's last actions with their times: what the overlay page shows."""
    return await run_in_threadpool(status, state)


@router.post("/dj/follow", summary='{"on": true|false}: the music follows the mood, or stays as it is',
             responses=errors({400: "A body without on: true or false"}))
async def follow(body: FollowRequest, state: ServerStateDep) -> DJStatus:
    """While on, the first mood that holds for --follow-hold seconds starts the music, and each new mood that
    holds queues tracks for it (at most every --follow-gap seconds). Needs Spotify Premium."""
    await run_in_threadpool(state.dj.set_following, body.on)
    return await run_in_threadpool(status, state)


@router.post("/dj/like", summary="Save the track playing to your library, remembered as liked for its mood",
             responses={202: {"model": DJPending, "description": "Spotify has not answered yet"}, **REFUSALS})
async def like(state: ServerStateDep) -> DJActionInfo:
    """Saves the track playing to your Spotify library; its artists come first in later playlists and queues for
    the mood it was picked for."""
    return await ask(state, LIKE)


@router.post("/dj/skip", summary="Next track; the one skipped never comes back for its mood",
             responses={202: {"model": DJPending, "description": "Spotify has not answered yet"}, **REFUSALS})
async def skip(state: ServerStateDep) -> DJActionInfo:
    """Goes to the next track, and remembers the one skipped as not for the mood it was picked for."""
    return await ask(state, SKIP)


async def ask(state: ServerState, kind: str) -> DJActionInfo | JSONResponse:
    """Like or skip, answered once Spotify has (the DJ's worker does the requests; this waits off the event loop)."""
    t = await run_in_threadpool(state.dj.like if kind == LIKE else state.dj.skip)
    action = await run_in_threadpool(state.dj.outcome, kind, t, OUTCOME_TIMEOUT_S)
    if action is None:
        return JSONResponse(DJPending(message=f"Spotify has not answered the {kind} yet; GET /dj shows what comes "
                                              "of it.").model_dump(), status_code=202)
    if action.action == ERROR:
        raise ApiError(STATUS_OF_REASON.get(action.reason, 409), action.detail)
    return action_info(state.dj, action)


def status(state: ServerState) -> DJStatus:
    """The DJ's snapshot as GET /dj answers it (takes the DJ's lock: call it off the event loop)."""
    snapshot = state.dj.state()
    playing, (mood, held) = snapshot.now_playing, snapshot.holding
    track = playing.track
    follow = state.settings.follow_settings
    return DJStatus(
        following=snapshot.following, hold_s=follow.hold_s, gap_s=follow.gap_s, play=state.settings.play,
        music_mood=snapshot.music_mood, holding=HeldMood(mood=mood, held_s=round(held, 1)) if mood else None,
        playing=PlayingTrack(title=track.name, artist=", ".join(track.artists), link=track.url or None, uri=track.uri,
                             mood=playing.mood) if track else None,
        device=playing.device, actions=[action_info(state.dj, action) for action in snapshot.recent])


def action_info(dj: ServerDJ, action: DJAction) -> DJActionInfo:
    at = datetime.fromtimestamp(dj.wall_time(action.t)).astimezone().isoformat(timespec="seconds")
    return DJActionInfo(t=round(action.t, 3), at=at, action=action.action, mood=action.mood, detail=action.detail,
                        tracks=list(action.names), uris=list(action.tracks), device=action.device,
                        reason=action.reason or None)
