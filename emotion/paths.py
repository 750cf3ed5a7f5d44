"""Where moodtunes keeps the user's files: settings, sign-ins and the personal calibration."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def config_dir() -> Path:
    """moodtunes' folder in the user config dir (MOODTUNES_CONFIG_DIR overrides): config.toml, profiles.toml,
    the Spotify sign-in and the personal calibration."""
    return Path(os.environ.get("MOODTUNES_CONFIG_DIR") or platformdirs.user_config_path("moodtunes"))

