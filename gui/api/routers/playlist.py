"""A Spotify playlist for a mood or for the live mood."""

from __future__ import annotations

import webbrowser
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from emotion.errors import MoodtunesError
from gui.api.errors import ApiError
from gui.api.models import PlaylistErrorResponse, PlaylistMade, PlaylistRequest, errors
from gui.api.state import ServerStateDep

if TYPE_CHECKING:
    from playlist.spotify import SpotifyError

router = APIRouter()


@router.post("/playlist", summary='{"mood": "current", "strategy": "match", "dry_run": false} -> the playlist, '
                                  "playing",
             responses={
                 **errors({400: "An unknown mood or strategy, or a body that is not JSON"}),
                 **errors({403: "Made, but Spotify plays only for Premium accounts",
                           409: "No mood yet, Spotify not set up or not signed in, another playlist in the making; or "
                                "made, but no Spotify is open to play on, or playing needs a new permission",
                           429: "Spotify's rate limit (see Retry-After)", 502: "Spotify failed"},
                          model=PlaylistErrorResponse)})
async def playlist(body: PlaylistRequest, state: ServerStateDep) -> PlaylistMade:
    """A Spotify playlist for a mood, or for the live mood ("current"), started on your Spotify (the active
    device, else the one open) unless "play" is false or the server runs with --no-play. It never opens a browser
    to sign in: sign in once with `moodtunes playlist --mood happy`. A playlist that was made but could not
    start comes with the error, as "playlist"; one that starts is the DJ's music (GET /dj)."""
    emotion, confidence = body.mood, None
    if emotion == "current":
        current = state.live.snapshot().mood
        if current is None:
            raise ApiError(409, "No mood yet: nobody has been in front of the camera for a few seconds.")
        emotion, confidence = current.label, current.confidence
    if state.making_playlist.locked():
        raise ApiError(409, "Already making a playlist; wait for it to finish.")
    from gui.api.dj import SIGN_IN

    play = (state.settings.play if body.play is None else body.play) and not body.dry_run
    async with state.making_playlist:
        try:
            result = await run_in_threadpool(
                state.make_playlist, emotion, confidence, body.strategy, dry_run=body.dry_run, new=body.new,
                sign_in=False, open_url=webbrowser.open, again=SIGN_IN, new_hint=' (send "new": true for another)',
                play=play)
        except MoodtunesError as exc:
            raise playlist_error(exc, emotion) from exc
    state.live.playlist_made()
    made = PlaylistMade(name=result.name, url=result.url, track_count=result.track_count,
                        tracks=[str(t) for t in result.tracks], notes=result.notes, reused=result.reused,
                        mood=emotion, strategy=body.strategy, dry_run=body.dry_run, device=result.device)
    if result.play_error is not None:
        raise not_started(result.play_error, made)
    if result.device is not None:  # the music changed: following goes on from this playlist, not another
        await run_in_threadpool(state.dj.played, emotion, result.tracks, result.device)
    return made


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


def not_started(exc: SpotifyError, made: PlaylistMade) -> ApiError:
    """The playlist is made but did not start: one line that says why and what to do, the playlist with it."""
    from playlist.spotify import NoDevice, PremiumRequired
    from playlist.spotify.errors import no_device_message

    if isinstance(exc, NoDevice):  # said the API's way: the request is what the user sends again
        error = ApiError(409, no_device_message("send POST /playlist again (the same playlist starts, no duplicate "
                                                "is made)"))
    elif isinstance(exc, PremiumRequired):
        error = ApiError(403, str(exc))
    else:  # a permission to give (409, and how), a rate limit, or Spotify's own refusal
        error = playlist_error(exc, made.mood)
    return ApiError(error.status, f"{error} The playlist: {made.url}", **error.extra, playlist=made.model_dump())
