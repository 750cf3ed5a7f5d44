"""What moodtunes' local API answers: the request and response schemas that /docs shows.

Pydantic models, as FastAPI documents them; the routers in :mod:`gui.api.routers` answer with them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from emotion.classes import EMOTIONS
from playlist.profiles import STRATEGIES

PLAYLIST_MARKS = 20  # the newest playlist times the live snapshot carries

EmotionName = Literal[EMOTIONS]
SourceState = Literal["starting", "running", "ended", "failed", "none"]


class ErrorResponse(BaseModel):
    """Every error: an HTTP status and one line that says what is wrong and what to do."""

    error: str = Field(description="One line, never a traceback.")


class EmotionInfo(BaseModel):
    name: EmotionName
    colour: str = Field(description="#rrggbb, as the window and the overlay page draw it.")
    valence: float = Field(description="-1 (unpleasant) .. 1 (pleasant), after Russell's circumplex.")
    arousal: float = Field(description="-1 (calm) .. 1 (excited).")


class SourceHealth(BaseModel):
    name: str | None = Field(description="The camera number, video, photo or folder; null until it is open.")
    kind: Literal["camera", "video", "photos"] | None
    state: SourceState
    error: str | None = Field(None, description="Why it stopped: only when it failed.")


class Health(BaseModel):
    """The engine's fields appear once the live source's engine is ready (never with --no-source)."""

    status: str = Field(description='"ok", or the live source\'s state while it is "starting" or "failed".')
    uptime_s: float
    model: str | None = Field(None, description="The emotion model's file name.")
    detector: str | None = Field(None, description="YuNet, or the Haar cascade.")
    detector_note: str | None = Field(None, description="Why the detector is not YuNet, when it is not.")
    device: str | None = Field(None, description="cpu, cuda:N or mps.")
    backend: Literal["onnxruntime", "opencv", "torch"] | None = Field(None,
                                                                      description="What runs the emotion network.")
    calibrated: bool | None = Field(None, description="A personal calibration is in use (once a frame is analysed).")
    calibration_note: str | None = Field(None, description="Why a saved calibration is not used, when it is not.")
    source: SourceHealth


class Face(BaseModel):
    box: tuple[int, int, int, int] = Field(description="x, y, width, height in pixels.")
    label: EmotionName
    confidence: float
    probabilities: dict[EmotionName, float]


class Analysis(BaseModel):
    width: int
    height: int
    faces: list[Face]
    notes: list[str] = Field(description="What was done to read the image, e.g. a huge JPEG read at reduced size.")


class SmoothedMood(BaseModel):
    label: EmotionName = Field(description="The main face's dominant emotion over the last few seconds.")
    confidence: float
    held_s: float = Field(description="How long this has been the mood, in seconds.")
    probabilities: dict[EmotionName, float]


class MoodSnapshot(BaseModel):
    state: SourceState
    version: int = Field(description="Grows with every change; /events sends each version once.")
    mood: SmoothedMood | None = Field(description="null while nobody has been in front of the camera for a moment.")
    faces: int
    t: float | None = Field(description="The newest frame's time on the source's clock, in seconds.")
    playlists: list[float] = Field(description=f"When the newest {PLAYLIST_MARKS} playlists were made "
                                               "(POST /playlist), on the same clock as t.")
    error: str | None = Field(None, description="Why the source stopped: only when it failed.")


class PlaylistRequest(BaseModel):
    mood: Literal[(*EMOTIONS, "current")] = Field("current", description='"current": the live mood.')
    strategy: Literal[STRATEGIES] = Field("match", description="match the mood, or start from it and lift it.")
    dry_run: bool = Field(False, description="Choose the tracks but create no playlist.")
    new: bool = Field(False, description="Make a new playlist even if one was made for this mood a moment ago.")
    play: bool | None = Field(None, description="Start it on your Spotify once made (Premium): true, false, or null "
                                                "for the server's choice (yes, unless started with --no-play).")


class PlaylistMade(BaseModel):
    name: str
    url: str | None = Field(description="The playlist on Spotify; null for a dry run.")
    track_count: int
    tracks: list[str] = Field(description='"Artist - Title" of each track.')
    notes: list[str]
    reused: bool = Field(description="The playlist made a moment ago for the same mood, not a new one.")
    mood: EmotionName
    strategy: Literal[STRATEGIES]
    dry_run: bool
    device: str | None = Field(None, description="The device it started playing on; null when it was not started.")


class PlaylistErrorResponse(ErrorResponse):
    web_search: str | None = Field(
        None, description='With 409 "Spotify is not set up": the mood as a search on Spotify\'s web player.')
    playlist: PlaylistMade | None = Field(
        None, description="When the playlist was made but could not start (no device, no Premium, a permission "
                          "to give): the playlist, with its link.")


class FollowRequest(BaseModel):
    on: bool = Field(description="true: the music follows the mood; false: it stays as it is.")


class PlayingTrack(BaseModel):
    title: str
    artist: str = Field(description="Its artists, comma-separated.")
    link: str | None = Field(description="The track on open.spotify.com.")
    uri: str
    mood: EmotionName | None = Field(description="The mood it was picked for.")


class HeldMood(BaseModel):
    mood: EmotionName
    held_s: float = Field(description="How long it has held, counting only time with a face.")


class DJActionInfo(BaseModel):
    t: float = Field(description="When the DJ decided, on the live source's clock (as /mood's t), in seconds.")
    at: str = Field(description="That moment on this computer's clock (ISO 8601).")
    action: Literal["play", "queue", "like", "skip", "error"]
    mood: EmotionName | None = Field(description="The mood the tracks were picked for.")
    detail: str = Field(description='One line, e.g. "sad for 20 s: queued 3 tracks, lift", or what went wrong.')
    tracks: list[str] = Field(description='"Artist - Title" of each track played, queued, liked or skipped.')
    uris: list[str] = Field(description="Their Spotify URIs.")
    device: str | None
    reason: str | None = Field(None, description='With an error, what can be done: "sign_in", "no_device", '
                                                 '"premium", "rate_limited", "offline", or null.')


class DJStatus(BaseModel):
    """What the DJ is doing: the overlay page shows it."""

    following: bool = Field(description="The music follows the mood (--follow, POST /dj/follow).")
    hold_s: float = Field(description="How long a new mood must hold before the music follows it (--follow-hold).")
    gap_s: float = Field(description="The least time between two changes of the music (--follow-gap).")
    play: bool = Field(description="POST /playlist starts the playlist it makes (off with --no-play).")
    music_mood: EmotionName | None = Field(description="The mood the music is on; null before it started.")
    holding: HeldMood | None = Field(description="The mood holding now, as the DJ counts it.")
    playing: PlayingTrack | None = Field(description="The track playing, as moodtunes last saw it.")
    device: str | None = Field(description="The Spotify device it plays on.")
    actions: list[DJActionInfo] = Field(description="The last few things the DJ did, the latest last.")

class DJPending(BaseModel):
    message: str = Field(description="Spotify has not answered yet; GET /dj shows what comes of it.")


class Calibrated(BaseModel):
    calibrated: Literal[True] = True
    message: str
    frames: int = Field(description="How many frames of the face were averaged.")


class CalibrationReset(BaseModel):
    calibrated: Literal[False] = False
    message: str


def errors(described: dict[int | str, str],
           model: type[ErrorResponse] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a path operation: its error statuses, what each means, and their one body."""
    return {status: {"model": model, "description": text} for status, text in described.items()}
