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


class PlaylistErrorResponse(ErrorResponse):
    web_search: str | None = Field(
        None, description='With 409 "Spotify is not set up": the mood as a search on Spotify\'s web player.')


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
