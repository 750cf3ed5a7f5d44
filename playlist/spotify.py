"""Spotify for moodtunes: configuration, PKCE sign-in, token cache and a careful client.

spotipy does the protocol work (PKCE handshake, token requests, endpoints). Around it this
module adds what a desktop app needs in 2026:

- the client id from SPOTIPY_CLIENT_ID or <config dir>/config.toml, never in the repo;
- a token cache in the user config dir, mode 0600, written atomically;
- a sign-in whose browser-redirect wait has a timeout and can be cancelled;
- a timeout on every request; one token refresh and retry on 401; an expired sign-in
  (invalid_grant) clears the cache and asks to sign in again;
- no sleeping through long rate limits: 429 waits at most a few seconds, else says how
  long Spotify asked to wait; 5xx retried a bounded number of times on reads only (a
  retried POST could create a second playlist);
- base URLs from SPOTIFY_API_BASE_URL / SPOTIFY_ACCOUNTS_BASE_URL, so the whole app can
  talk to a local server.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import CacheHandler
from urllib3.util.retry import Retry

from emotion.atomic import atomic_write
from emotion.errors import MoodtunesError
from playlist.builder import Track
from playlist.profiles import config_dir, read_toml

DEFAULT_API_BASE = "https://api.spotify.com/v1"
DEFAULT_ACCOUNTS_BASE = "https://accounts.spotify.com"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
SCOPES = ("playlist-modify-private", "playlist-modify-public", "user-top-read")
REQUEST_TIMEOUT_S = 10.0
MAX_RATE_LIMIT_WAIT_S = 3.0
SIGN_IN_TIMEOUT_S = 180.0
TOKEN_FILENAME = "spotify_token.json"

SETUP_STEPS = (
    "Spotify is not set up. 1) Open https://developer.spotify.com/dashboard and create an app "
    "(Web API). 2) Add the redirect URI {redirect} in its settings. 3) Copy its Client ID and "
    "run `export SPOTIPY_CLIENT_ID=<client id>` (or put client_id = \"...\" under [spotify] in "
    "{config}). Then try again."
)


class SpotifyError(MoodtunesError):
    """Spotify could not do what was asked; the message says why and what to do."""


class NotConfigured(SpotifyError):
    """No client id: the app is not registered with Spotify yet."""


class SignInRequired(SpotifyError):
    """There is no usable sign-in (none yet, expired or revoked)."""


class SignInCancelled(SpotifyError):
    """The user cancelled, or never finished, the browser sign-in."""


class RateLimited(SpotifyError):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"Spotify's rate limit was hit and it asks to wait {format_wait(retry_after)}; try again after that."
        )


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
        raise NotConfigured(SETUP_STEPS.format(redirect=redirect, config=config_file))
    check_redirect_uri(redirect)
    return SpotifyConfig(
        client_id=client_id,
        redirect_uri=redirect,
        api_base=(os.environ.get("SPOTIFY_API_BASE_URL") or DEFAULT_API_BASE).rstrip("/"),
        accounts_base=(os.environ.get("SPOTIFY_ACCOUNTS_BASE_URL") or DEFAULT_ACCOUNTS_BASE).rstrip("/"),
        config_dir=directory,
    )


def check_redirect_uri(uri: str) -> tuple[str, int, str]:
    """(host, port, path) of a loopback redirect URI that Spotify accepts."""
    parts = urllib.parse.urlsplit(uri)
    if parts.hostname == "localhost":
        raise SpotifyError(
            f"Redirect URI {uri} uses 'localhost', which Spotify rejects; use http://127.0.0.1:PORT/callback "
            "here and in the Spotify dashboard."
        )
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or not parts.port:
        raise SpotifyError(
            f"Redirect URI {uri} must look like http://127.0.0.1:PORT/callback (a loopback address with a port)."
        )
    return parts.hostname, parts.port, parts.path or "/"


def format_wait(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


class TokenCache(CacheHandler):
    """spotipy's token JSON in one file, mode 0600, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_cached_token(self) -> dict | None:
        try:
            token = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return token if isinstance(token, dict) and "access_token" in token else None

    def save_token_to_cache(self, token_info: dict) -> None:
        atomic_write(self.path, json.dumps(token_info).encode("utf-8"), mode=0o600)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class SpotifyAuth:
    """PKCE sign-in and always-fresh access tokens (also spotipy's auth manager)."""

    def __init__(self, config: SpotifyConfig, open_browser: Callable[[str], object] | None = None) -> None:
        self.config = config
        self.cache = TokenCache(config.token_path)
        self.open_browser = open_browser or _open_in_browser
        self._pkce = spotipy.SpotifyPKCE(
            client_id=config.client_id,
            redirect_uri=config.redirect_uri,
            scope=list(SCOPES),
            cache_handler=self.cache,
            requests_timeout=REQUEST_TIMEOUT_S,
            open_browser=False,
        )
        self._pkce.OAUTH_AUTHORIZE_URL = f"{config.accounts_base}/authorize"
        self._pkce.OAUTH_TOKEN_URL = f"{config.accounts_base}/api/token"
        self._lock = threading.Lock()

    @property
    def signed_in(self) -> bool:
        token = self.cache.get_cached_token()
        return bool(token and token.get("refresh_token") and self._has_scopes(token))

    def _has_scopes(self, token: dict) -> bool:
        return set(SCOPES) <= set(str(token.get("scope", "")).split())

    def sign_in(self, cancel: threading.Event | None = None, timeout: float = SIGN_IN_TIMEOUT_S) -> None:
        """Open Spotify's consent page and wait for its redirect to our loopback address."""
        host, port, path = check_redirect_uri(self.config.redirect_uri)
        state = secrets.token_urlsafe(16)
        self._pkce.get_pkce_handshake_parameters()
        try:
            server = _CallbackServer((host, port), path, state)
        except OSError as exc:
            raise SpotifyError(
                f"Cannot listen on {host}:{port} for Spotify's sign-in redirect ({exc.strerror}); close the app "
                "using it, or set SPOTIPY_REDIRECT_URI to another port and add it in the Spotify dashboard."
            ) from exc
        with server:
            self.open_browser(self._pkce.get_authorize_url(state))
            code = server.wait(timeout, cancel)
        try:
            self._pkce.get_access_token(code=code, check_cache=False)
        except spotipy.SpotifyOauthError as exc:
            raise SpotifyError(f"Spotify refused the sign-in ({exc.error or exc}); press P to try again.") from exc
        except requests.RequestException as exc:
            raise SpotifyError(f"Cannot reach Spotify to finish signing in ({exc}); check your connection.") from exc

    def get_access_token(self, as_dict: bool = False) -> str:
        """A valid access token, refreshed when it is about to expire."""
        with self._lock:
            token = self.cache.get_cached_token()
            if not token or not token.get("refresh_token") or not self._has_scopes(token):
                raise SignInRequired("Not signed in to Spotify; press P to sign in.")
            if token.get("expires_at", 0) - 60 < time.time():
                token = self._refresh(token)
            return token["access_token"]

    def force_refresh(self) -> None:
        """Refresh now: after a 401 the cached token is no good whatever its expiry says."""
        with self._lock:
            token = self.cache.get_cached_token()
            if not token or not token.get("refresh_token"):
                raise SignInRequired("Not signed in to Spotify; press P to sign in.")
            self._refresh(token)

    def _refresh(self, token: dict) -> dict:
        try:
            return self._pkce.refresh_access_token(token["refresh_token"])
        except spotipy.SpotifyOauthError as exc:
            if exc.error == "invalid_grant":
                # Spotify ends refresh tokens of new apps 6 months after sign-in; spotipy would
                # keep the dead token cached and fail again on every call.
                self.cache.clear()
                raise SignInRequired(
                    "Your Spotify sign-in has expired or was revoked; press P to sign in again."
                ) from exc
            raise SpotifyError(f"Spotify refused to refresh the sign-in ({exc.error}); press P to try again.") from exc
        except requests.RequestException as exc:
            raise SpotifyError(f"Cannot reach Spotify ({type(exc).__name__}); check your connection.") from exc


class SpotifyClient:
    """The few Web API calls moodtunes makes, with 2026's rules and careful error handling."""

    def __init__(self, auth: SpotifyAuth, max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT_S) -> None:
        self.auth = auth
        self.max_rate_limit_wait = max_rate_limit_wait
        session = requests.Session()
        retry = Retry(
            total=2, connect=2, read=0, status=2, backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=False, raise_on_status=False,
        )
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        self._sp = spotipy.Spotify(auth_manager=auth, requests_session=session, requests_timeout=REQUEST_TIMEOUT_S)
        self._sp.prefix = auth.config.api_base + "/"

    def _call(self, method: Callable, *args, **kwargs):
        refreshed = waited = False
        while True:
            try:
                return method(*args, **kwargs)
            except spotipy.SpotifyException as exc:
                if exc.http_status == 401 and not refreshed:
                    refreshed = True
                    self.auth.force_refresh()
                    continue
                if exc.http_status == 429:
                    retry_after = _retry_after(exc.headers)
                    if not waited and retry_after <= self.max_rate_limit_wait:
                        waited = True
                        time.sleep(retry_after)
                        continue
                    raise RateLimited(retry_after) from exc
                raise SpotifyError(_describe(exc)) from exc
            except requests.RequestException as exc:
                raise SpotifyError(f"Cannot reach Spotify ({type(exc).__name__}); check your connection.") from exc

    def search_tracks(self, query: str, limit: int = 10, offset: int = 0) -> list[Track]:
        result = self._call(self._sp.search, q=query, limit=limit, offset=offset, type="track", market="from_token")
        page = (result or {}).get("tracks") or {}
        return [t for t in (_track(item) for item in page.get("items") or []) if t is not None]

    def top_artists(self, limit: int = 5) -> list[str]:
        result = self._call(self._sp.current_user_top_artists, limit=limit, time_range="medium_term")
        return [a["name"] for a in (result or {}).get("items", []) if a and a.get("name")]

    def create_playlist(self, name: str, description: str) -> dict:
        """A private playlist of the current user (POST /me/playlists)."""
        return self._call(self._sp.current_user_playlist_create, name, public=False, description=description)

    def add_tracks(self, playlist_id: str, uris: list[str]) -> None:
        for start in range(0, len(uris), 100):  # at most 100 per request
            self._call(self._sp.playlist_add_items, playlist_id, uris[start : start + 100])

    def playlist_size(self, playlist_id: str) -> int:
        """Number of items in one of the user's playlists ('items' in 2026 responses, 'tracks' before)."""
        result = self._call(self._sp.playlist, playlist_id, fields="items(total),tracks(total)") or {}
        return int((result.get("items") or result.get("tracks") or {}).get("total", 0))


def _track(item: dict | None) -> Track | None:
    item = (item or {}).get("item") or (item or {}).get("track") or item  # playlist entries wrap tracks
    if not item or not item.get("id") or not item.get("uri"):
        return None
    return Track(
        id=item["id"],
        uri=item["uri"],
        name=item.get("name", ""),
        artists=tuple(a.get("name", "") for a in item.get("artists") or []),
        url=(item.get("external_urls") or {}).get("spotify", ""),
    )


def _retry_after(headers) -> float:
    try:
        return max(0.0, float((headers or {}).get("Retry-After", 1)))
    except (TypeError, ValueError):
        return 1.0


def _describe(exc: spotipy.SpotifyException) -> str:
    message = str(exc.msg).split(":\n", 1)[-1].strip() or "no details"
    if exc.http_status == 403:
        return (f"Spotify refused the request (403: {message}). In development mode only the app owner (with "
                "Premium) and up to 5 allow-listed users may use the app; add your account in the dashboard.")
    if exc.http_status >= 500:
        return f"Spotify is having problems ({exc.http_status}: {message}); try again in a minute."
    return f"Spotify answered {exc.http_status}: {message}."


def _open_in_browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url)


class _CallbackServer(http.server.HTTPServer):
    """Answers the one redirect that brings the authorisation code back."""

    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], path: str, state: str) -> None:
        self.expected_path, self.expected_state = path, state
        self.code: str | None = None
        self.error: str | None = None
        super().__init__(address, _CallbackHandler)
        self.timeout = 0.2  # handle_request() returns this often to check timeout and cancel

    def wait(self, timeout: float, cancel: threading.Event | None) -> str:
        deadline = time.monotonic() + timeout
        while self.code is None and self.error is None:
            if cancel is not None and cancel.is_set():
                raise SignInCancelled("Spotify sign-in was cancelled.")
            if time.monotonic() > deadline:
                raise SignInCancelled(
                    f"Spotify sign-in did not finish within {timeout:.0f} s; press P to try again."
                )
            self.handle_request()
        if self.error is not None:
            raise SpotifyError(f"Spotify sign-in failed ({self.error}); press P to try again.")
        return self.code


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        if url.path != self.server.expected_path:
            self._reply(404, "Not the moodtunes sign-in address.")
            return
        if params.get("state") != self.server.expected_state:
            self._reply(400, "This sign-in link is stale; go back to moodtunes and press P again.")
            return
        if "error" in params:
            self.server.error = params["error"]
            self._reply(200, f"Spotify sign-in failed: {params['error']}. You can close this tab.")
        elif params.get("code"):
            self.server.code = params["code"]
            self._reply(200, "Signed in to Spotify. You can close this tab and return to moodtunes.")
        else:
            self._reply(400, "The redirect carried no authorisation code.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>moodtunes</title><p>{text}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # keep the code out of logs
        pass
