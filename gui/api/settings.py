"""How ``moodtunes serve`` runs: its settings and their defaults, written once.

This module loads nothing else but the DJ's timings (pure dataclasses), so ``main.py`` takes its
option defaults from here without loading FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playlist.dj import FollowSettings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


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
    play: bool = True  # POST /playlist starts what it made on the user's Spotify, unless asked not to (--no-play)
    follow: bool = False  # the DJ follows the live mood from the start (--follow; POST /dj/follow switches it)
    follow_settings: FollowSettings = field(default_factory=FollowSettings)  # --follow-hold, --follow-gap

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_NAMES
