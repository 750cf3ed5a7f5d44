"""Spotify for moodtunes, split the way spotipy splits itself:

- ``config``: which app to sign in as (client id, redirect URI) and where Spotify is (base URLs);
- ``errors``: the error classes and the messages that turn Spotify's refusals into next steps;
- ``cache``: the token file, shared safely by several running copies of moodtunes;
- ``auth``: PKCE sign-in and fresh access tokens, on top of spotipy's ``SpotifyPKCE``;
- ``callback``: the loopback server that receives the sign-in's redirect;
- ``client``: the few Web API calls, over ``requests``;
- ``parse``: tolerant reading of Spotify's JSON.

The names other code uses are importable from here.
"""

from playlist.spotify.auth import SpotifyAuth
from playlist.spotify.cache import TokenCache
from playlist.spotify.client import SpotifyClient
from playlist.spotify.config import SpotifyConfig, check_redirect_uri, load_config
from playlist.spotify.errors import (
    NoDevice,
    NotConfigured,
    Offline,
    PermissionNeeded,
    PremiumRequired,
    RateLimited,
    SignInCancelled,
    SignInRequired,
    SpotifyError,
    describe_api_error,
    error_details,
    explain,
    format_wait,
)
from playlist.spotify.parse import Device, Playback, parse_track

__all__ = [
    "Device",
    "NoDevice",
    "NotConfigured",
    "Offline",
    "PermissionNeeded",
    "Playback",
    "PremiumRequired",
    "RateLimited",
    "SignInCancelled",
    "SignInRequired",
    "SpotifyAuth",
    "SpotifyClient",
    "SpotifyConfig",
    "SpotifyError",
    "TokenCache",
    "check_redirect_uri",
    "describe_api_error",
    "error_details",
    "explain",
    "format_wait",
    "load_config",
    "parse_track",
]
