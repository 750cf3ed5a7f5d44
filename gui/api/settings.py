"""How ``moodtunes serve`` runs: its settings and their defaults, written once.

This module loads nothing else, so ``main.py`` takes its option defaults from here without
loading FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_NAMES
