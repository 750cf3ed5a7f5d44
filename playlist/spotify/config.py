"""Which Spotify app moodtunes signs in as, and where Spotify is.

The client id comes from SPOTIPY_CLIENT_ID or <config dir>/config.toml, never from the repo;
the base URLs from SPOTIFY_API_BASE_URL / SPOTIFY_ACCOUNTS_BASE_URL, so the whole app can talk
to a local server.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from emotion.paths import config_dir
from playlist.profiles import read_toml
from playlist.spotify.errors import NotConfigured, SpotifyError
from playlist.spotify_setup import DEFAULT_REDIRECT_URI, README_SETUP, setup_lines

DEFAULT_API_BASE = "https://api.spotify.com/v1"
DEFAULT_ACCOUNTS_BASE = "https://accounts.spotify.com"
TOKEN_FILENAME = "spotify_token.json"
REQUEST_TIMEOUT_S = 10.0  # for every call, to the accounts service and to the Web API alike


@dataclass(frozen=True)
class SpotifyConfig:
    client_id: str
    redirect_uri: str = DEFAULT_REDIRECT_URI
    api_base: str = DEFAULT_API_BASE
    accounts_base: str = DEFAULT_ACCOUNTS_BASE
    config_dir: Path = Path(".")

    @property
    def token_path(self) -> Path:
        return self.config_dir / TOKEN_FILENAME


def load_config(directory: Path | None = None) -> SpotifyConfig:
    """Settings from the environment, then <config dir>/config.toml; NotConfigured without a client id."""
    directory = directory or config_dir()
    config_file = directory / "config.toml"
    file_settings: dict = read_toml(config_file).get("spotify", {}) if config_file.is_file() else {}
    redirect = os.environ.get("SPOTIPY_REDIRECT_URI") or file_settings.get("redirect_uri") or DEFAULT_REDIRECT_URI
    client_id = (os.environ.get("SPOTIPY_CLIENT_ID") or file_settings.get("client_id") or "").strip()
    if not client_id:
        # All the steps, not only the client id: a user who skips one gets a refusal from Spotify later.
        missing = f"no client id (SPOTIPY_CLIENT_ID, or client_id under [spotify] in {config_file})"
        steps = tuple(setup_lines(redirect, str(config_file)))
        raise NotConfigured(f"Spotify is not set up: there is no client id. {' '.join(steps)} More in {README_SETUP}.",
                            missing, steps)
    check_redirect_uri(redirect)
    return SpotifyConfig(
        client_id=client_id,
        redirect_uri=redirect,
        api_base=(os.environ.get("SPOTIFY_API_BASE_URL") or DEFAULT_API_BASE).rstrip("/"),
        accounts_base=(os.environ.get("SPOTIFY_ACCOUNTS_BASE_URL") or DEFAULT_ACCOUNTS_BASE).rstrip("/"),
        config_dir=directory,
    )


def check_redirect_uri(uri: str) -> tuple[str, int, str]:
    """(host, port, path) of a loopback redirect URI that Spotify accepts: 127.0.0.1 or [::1]."""
    parts = urllib.parse.urlsplit(uri)
    if parts.hostname == "localhost":
        raise SpotifyError(
            f"Redirect URI {uri} uses 'localhost', which Spotify rejects; use http://127.0.0.1:PORT/callback "
            "here and in the Spotify dashboard."
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or not port:
        raise SpotifyError(
            f"Redirect URI {uri} must look like http://127.0.0.1:PORT/callback (a loopback address with a port)."
        )
    return parts.hostname, port, parts.path or "/"
