"""A Spotify playlist for a mood or for the live mood."""

from __future__ import annotations

import webbrowser

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from emotion.errors import MoodtunesError
from gui.api.errors import ApiError
from gui.api.models import PlaylistErrorResponse, PlaylistMade, PlaylistRequest, errors
from gui.api.state import ServerStateDep

router = APIRouter()


@router.post("/playlist", summary='{"mood": "current", "strategy": "match", "dry_run": false} -> the playlist',
             responses={
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
