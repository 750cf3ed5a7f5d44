"""Where moodtunes keeps the user's files: settings and sign-ins, and downloaded models."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def config_dir() -> Path:
    """moodtunes' folder in the user config dir (MOODTUNES_CONFIG_DIR overrides): config.toml, profiles.toml,
    the Spotify sign-in and the personal calibration."""
    return Path(os.environ.get("MOODTUNES_CONFIG_DIR") or platformdirs.user_config_path("moodtunes"))


def cache_dir() -> Path:
    """Where downloaded models live: MOODTUNES_CACHE_DIR, else the platform's user cache."""
    return Path(os.environ.get("MOODTUNES_CACHE_DIR") or platformdirs.user_cache_path("moodtunes"))
