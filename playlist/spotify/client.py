"""Spotify for moodtunes: configuration, PKCE sign-in, token cache and a careful client.

spotipy does the OAuth work (the PKCE handshake, token exchange and refresh). The five Web
API calls moodtunes makes are plain REST and go through ``requests`` directly: spotipy's own
request wrapper assumes error bodies shaped ``{"error": {...}}`` (Spotify also answers
``{"error": "...", "error_description": "..."}``, which it turns into an AttributeError) and
hides empty bodies. Around that, this module adds what a desktop app needs in 2026:

- the client id from SPOTIPY_CLIENT_ID or <config dir>/config.toml, never in the repo;
- a token cache in the user config dir, mode 0600, written atomically; a sign-in that
  cannot be saved still works for this session, and ``invalid_grant`` never deletes a token
  that another moodtunes has just refreshed;
- a sign-in whose loopback callback server cannot be stalled by idle connections, has a
  deadline and can be cancelled, and shows its link for when no browser opens;
- Spotify's own reason in every error, mapped to the README's steps where there is one;
  one token refresh on 401; 429 waited out only when short and stated; 5xx retried a
  bounded number of times on reads only (a retried POST could create a second playlist);
- every field read tolerantly: a missing or null field skips the item or is one clear error;
- base URLs from SPOTIFY_API_BASE_URL / SPOTIFY_ACCOUNTS_BASE_URL, so the whole app can
  talk to a local server.
"""

from __future__ import annotations

import contextlib
import errno
import html
import http.server
import json
import os
import secrets
import socket
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import CacheHandler
from urllib3.util.retry import Retry

from emotion.atomic import atomic_write
from emotion.errors import MoodtunesError
from emotion.paths import config_dir
from playlist.builder import SearchPage, Track
from playlist.profiles import read_toml

DEFAULT_API_BASE = "https://api.spotify.com/v1"
DEFAULT_ACCOUNTS_BASE = "https://accounts.spotify.com"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
# playlist-read-private: to find a just-created (private) playlist when Spotify's reply omits it.
SCOPES = ("playlist-modify-private", "playlist-modify-public", "playlist-read-private", "user-top-read")
REQUEST_TIMEOUT_S = 10.0
MAX_RATE_LIMIT_WAIT_S = 3.0
SIGN_IN_TIMEOUT_S = 180.0
CALLBACK_CONNECTION_TIMEOUT_S = 5.0
ASSUMED_TOKEN_LIFETIME_S = 3600  # Spotify's documented access-token lifetime
TOKEN_FILENAME = "spotify_token.json"
README_SETUP = "the README's \"Spotify setup\""

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
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


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


def format_wait(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


# --- what Spotify says when it says no ------------------------------------------------------
def error_details(response: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, reason) from an error reply of the Web API or of the accounts service.

    The Web API answers {"error": {"status", "message", "reason"}}; the accounts service, and
    some Web API gateways, {"error": "invalid_client", "error_description": "..."}.
    """
    try:
        body = response.json()
    except ValueError:
        return None, (response.text or "").strip()[:200] or None, None
    if not isinstance(body, dict):
        return None, None, None
    error = body.get("error")
    if isinstance(error, dict):
        return None, _text(error.get("message")), _text(error.get("reason"))
    return _text(error), _text(body.get("error_description")), None


def explain(code: str | None, message: str | None, reason: str | None = None) -> str | None:
    """The README step that fixes what Spotify reported, when there is one."""
    said = f"{message or ''} {code or ''}".lower()
    if "premium" in said:
        return (f"Spotify says: {message or code}. Since 2026 the owner of a development-mode app needs Spotify "
                f"Premium; see step 5 of {README_SETUP}.")
    if "not registered" in said or "user not approved" in said:
        return (f"Spotify says: {message or code}. Add your Spotify account (its e-mail) under User Management in "
                f"your app on developer.spotify.com; see step 4 of {README_SETUP}.")
    if code == "invalid_client" or "invalid client" in said:
        return (f"Spotify does not recognise the client id ({message or code}). Check that SPOTIPY_CLIENT_ID (or "
                f"client_id in config.toml) is the Client ID shown in your app on developer.spotify.com; see step 3 of "
                f"{README_SETUP}.")
    if reason == "QUOTA_EXCEEDED" or "quota" in said:
        return (f"Spotify's quota for this app is used up ({message or reason}); it resets later. This is a quota, "
                "not a short rate limit: waiting a few seconds will not help.")
    return None


def describe_api_error(response: requests.Response, again: str) -> str:
    code, message, reason = error_details(response)
    status = response.status_code
    known = explain(code, message, reason)
    if known:
        return known
    said = message or code or "no details"
    if status == 403:
        return (f"Spotify refused the request (403: {said}). In development mode only the app's owner (with "
                f"Premium) and the users added under User Management may use it; see {README_SETUP}.")
    if status >= 500:
        return f"Spotify is having problems ({status}: {said}); {again} in a minute."
    return f"Spotify answered {status}: {said}."


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


# --- the token cache --------------------------------------------------------------------------
class TokenCache(CacheHandler):
    """spotipy's token JSON in one file, mode 0600, replaced atomically; kept in memory too.

    A write that fails (read-only folder, full disk) keeps the token in memory for this
    session and leaves ``problem`` set to one line for the user; the file on disk is untouched.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._memory: dict | None = None
        self._unreplaced: str | None = None  # the access token a failed write left on disk
        self.problem: str | None = None

    def _read_disk(self) -> dict | None:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:  # readable by others: a secret should not be
                os.chmod(self.path, 0o600)
            token = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return token if isinstance(token, dict) and isinstance(token.get("access_token"), str) else None

    def get_cached_token(self) -> dict | None:
        disk = self._read_disk()
        memory = self._memory
        if memory is None or disk is None:
            return disk or memory
        if disk["access_token"] in (memory["access_token"], self._unreplaced):
            return memory  # the file holds nothing newer than what this process has
        # Another moodtunes wrote the file since: the token that lives longer is the newer one.
        return disk if disk.get("expires_at", 0) >= memory.get("expires_at", 0) else memory

    def save_token_to_cache(self, token_info: dict) -> None:
        before = self._read_disk()
        self._memory = dict(token_info)
        try:
            atomic_write(self.path, json.dumps(token_info).encode("utf-8"), mode=0o600)
            self.problem, self._unreplaced = None, None
        except OSError as exc:
            self._unreplaced = before["access_token"] if before else None
            self.problem = (f"Your Spotify sign-in could not be saved in {self.path.parent} ({exc.strerror or exc}); "
                            "it works until you quit, then you will have to sign in again. Make that folder "
                            "writable, or point MOODTUNES_CONFIG_DIR at one that is.")

    def clear(self, refresh_token: str | None = None) -> bool:
        """Forget the sign-in, unless the file now holds another refresh token; True if cleared."""
        disk = self._read_disk()
        if refresh_token is not None and disk is not None and disk.get("refresh_token") != refresh_token:
            return False
        self._memory = None
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        return True


class _PKCE(spotipy.SpotifyPKCE):
    def _add_custom_values_to_token_info(self, token_info: dict) -> dict:
        # A reply without a usable expires_in must not crash the run: assume Spotify's
        # documented hour; a 401 makes moodtunes refresh sooner if the token dies first.
        expires_in = token_info.get("expires_in")
        if not isinstance(expires_in, (int, float)) or expires_in <= 0:
            token_info["expires_in"] = ASSUMED_TOKEN_LIFETIME_S
        return super()._add_custom_values_to_token_info(token_info)


class SpotifyAuth:
    """PKCE sign-in and always-fresh access tokens.

    ``again`` is how the user retries in this front end ("press P", "run the command again");
    ``show_link`` receives the sign-in address, for when no browser opens by itself.
    """

    def __init__(self, config: SpotifyConfig, open_browser: Callable[[str], object] | None = None,
                 show_link: Callable[[str], object] | None = None, again: str = "try again") -> None:
        self.config = config
        self.again = again
        self.cache = TokenCache(config.token_path)
        self.open_browser = open_browser or _open_in_browser
        self.show_link = show_link or (lambda url: None)
        self._pkce = _PKCE(
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
        return set(SCOPES) <= set(str(token.get("scope") or "").split())

    def sign_in(self, cancel: threading.Event | None = None, timeout: float = SIGN_IN_TIMEOUT_S) -> None:
        """Open Spotify's consent page and wait for its redirect to our loopback address."""
        host, port, path = check_redirect_uri(self.config.redirect_uri)
        state = secrets.token_urlsafe(16)
        self._pkce.get_pkce_handshake_parameters()
        try:
            server = _CallbackServer((host, port), path, state)
        except OSError as exc:
            raise SpotifyError(_listen_problem(host, port, exc)) from exc
        with server:
            url = self._pkce.get_authorize_url(state)
            self.show_link(url)
            self.open_browser(url)
            code = server.wait(timeout, cancel, self.again, self.config.redirect_uri)
        try:
            self._pkce.get_access_token(code=code, check_cache=False)
        except spotipy.SpotifyOauthError as exc:
            raise SpotifyError(explain(exc.error, exc.error_description) or
                               f"Spotify refused the sign-in ({exc.error_description or exc.error}); "
                               f"{self.again} to try again.") from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise SpotifyError(f"Could not finish signing in with Spotify ({type(exc).__name__}); check your "
                               f"connection and {self.again}.") from exc

    def get_access_token(self) -> str:
        """A valid access token, refreshed when it is about to expire."""
        with self._lock:
            token = self.cache.get_cached_token()
            if not token or not token.get("refresh_token") or not self._has_scopes(token):
                raise SignInRequired(f"Not signed in to Spotify; {self.again} to sign in.")
            if (token.get("expires_at") or 0) - 60 < time.time():
                token = self._refresh(token)
            return token["access_token"]

    def force_refresh(self) -> None:
        """Refresh now: after a 401 the cached token is no good whatever its expiry says."""
        with self._lock:
            token = self.cache.get_cached_token()
            if not token or not token.get("refresh_token"):
                raise SignInRequired(f"Not signed in to Spotify; {self.again} to sign in.")
            self._refresh(token)

    def _refresh(self, token: dict) -> dict:
        used = token["refresh_token"]
        try:
            fresh = self._pkce.refresh_access_token(used)
        except spotipy.SpotifyOauthError as exc:
            if exc.error == "invalid_grant":
                # Maybe another moodtunes refreshed in between and Spotify rotated the refresh
                # token: then the cache holds a good one. Only a cache still holding the dead
                # token is cleared (spotipy would keep it and fail again on every call).
                latest = self.cache.get_cached_token()
                if latest and latest.get("refresh_token") not in (None, used) and \
                        (latest.get("expires_at") or 0) - 60 > time.time():
                    return latest
                self.cache.clear(refresh_token=used)
                raise SignInRequired(
                    f"Your Spotify sign-in has expired or was revoked; {self.again} to sign in again."
                ) from exc
            raise SpotifyError(explain(exc.error, exc.error_description) or
                               f"Spotify refused to refresh the sign-in ({exc.error_description or exc.error}); "
                               f"{self.again}.") from exc
        except (requests.RequestException, ValueError) as exc:
            raise SpotifyError(f"Cannot reach Spotify's sign-in service ({type(exc).__name__}); check your "
                               "connection.") from exc
        if not isinstance(fresh, dict) or not isinstance(fresh.get("access_token"), str):
            raise SpotifyError(f"Spotify's sign-in service answered without an access token; {self.again}.")
        return fresh


def _listen_problem(host: str, port: int, exc: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    other_port = ("another program uses it. Close that program, or pick another port: add "
                  "http://127.0.0.1:PORT/callback under Redirect URIs in your app on developer.spotify.com and set "
                  "SPOTIPY_REDIRECT_URI to the same address")
    if exc.errno == errno.EADDRINUSE:
        return f"Cannot wait for Spotify's sign-in on {where}: {other_port}."
    if host == "::1":
        return (f"Cannot listen on {where} ({exc.strerror}): this computer has no IPv6 loopback. Use "
                "http://127.0.0.1:8888/callback as the redirect URI, here and in the Spotify dashboard.")
    return f"Cannot listen on {where} for Spotify's sign-in ({exc.strerror}); {other_port}."


# --- the Web API ----------------------------------------------------------------------------------
class SpotifyClient:
    """The few Web API calls moodtunes makes, with 2026's rules and careful error handling."""

    def __init__(self, auth: SpotifyAuth, max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT_S) -> None:
        self.auth = auth
        self.max_rate_limit_wait = max_rate_limit_wait
        self._session = requests.Session()
        # urllib3 retries 5xx on reads only: a retried POST could create a second playlist.
        retry = Retry(
            total=2, connect=2, read=0, status=2, backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=False, raise_on_status=False,
        )
        for scheme in ("http://", "https://"):
            self._session.mount(scheme, HTTPAdapter(max_retries=retry))

    def request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> object:
        """The JSON reply of one call (None when empty), or a SpotifyError that says why not."""
        url = f"{self.auth.config.api_base}/{path.lstrip('/')}"
        refreshed = waited = False
        while True:
            headers = {"Authorization": f"Bearer {self.auth.get_access_token()}"}
            try:
                response = self._session.request(method, url, params=params, json=body, headers=headers,
                                                 timeout=REQUEST_TIMEOUT_S)
            except requests.RequestException as exc:
                raise SpotifyError(f"Cannot reach Spotify ({type(exc).__name__}); check your connection.") from exc
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self.auth.force_refresh()
                continue
            if response.status_code == 429:
                retry_after = _retry_after(response.headers)
                code, message, reason = error_details(response)
                known = explain(code, message, reason)
                if known:
                    raise RateLimited(known, retry_after)
                if retry_after is not None and not waited and retry_after <= self.max_rate_limit_wait:
                    waited = True
                    time.sleep(retry_after)
                    continue
                if retry_after is None:
                    raise RateLimited("Spotify's rate limit was hit and it did not say for how long; "
                                      f"{self.auth.again} in a little while.")
                raise RateLimited(f"Spotify's rate limit was hit and it asks to wait {format_wait(retry_after)}; "
                                  f"{self.auth.again} after that.", retry_after)
            if response.status_code == 401:
                raise SignInRequired(f"Spotify no longer accepts this sign-in; {self.auth.again} to sign in again.")
            if response.status_code >= 400:
                raise SpotifyError(describe_api_error(response, self.auth.again))
            try:
                return response.json() if response.content else None
            except ValueError:
                return None

    def search_tracks(self, query: str, limit: int = 10, offset: int = 0) -> SearchPage:
        result = self.request("GET", "search", params={"q": query, "type": "track", "limit": limit,
                                                        "offset": offset, "market": "from_token"})
        page = _dict(_dict(result).get("tracks"))
        items = page.get("items") if isinstance(page.get("items"), list) else []
        total = page.get("total") if isinstance(page.get("total"), int) else None
        return SearchPage([t for t in map(parse_track, items) if t is not None], raw_count=len(items), total=total)

    def top_artists(self, limit: int = 5) -> list[str]:
        result = self.request("GET", "me/top/artists", params={"limit": limit, "time_range": "medium_term"})
        items = _dict(result).get("items")
        return [a["name"] for a in (items if isinstance(items, list) else [])
                if isinstance(a, dict) and _text(a.get("name"))]

    def create_playlist(self, name: str, description: str) -> tuple[str, str]:
        """(id, link) of a new private playlist of the current user (POST /me/playlists)."""
        created = _dict(self.request("POST", "me/playlists",
                                     body={"name": name, "public": False, "description": description}))
        playlist_id = _text(created.get("id"))
        if playlist_id is None:  # an empty or partial reply: find what was created by its (timestamped) name
            playlist_id = self.find_playlist(name)
        if playlist_id is None:
            raise SpotifyError(f"Spotify answered the creation of {name} without saying which playlist it is; "
                               "look for it in your Spotify library.")
        link = _text(_dict(created.get("external_urls")).get("spotify"))
        return playlist_id, link or f"https://open.spotify.com/playlist/{playlist_id}"

    def find_playlist(self, name: str) -> str | None:
        """The id of the user's most recent playlist called ``name`` (first page of GET /me/playlists)."""
        items = _dict(self.request("GET", "me/playlists", params={"limit": 50})).get("items")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("name") == name and _text(item.get("id")):
                return item["id"]
        return None

    def add_tracks(self, playlist_id: str, uris: list[str], added: Callable[[int], None] = lambda n: None) -> None:
        """Add ``uris`` at most 100 per request; ``added`` hears of each batch that Spotify took."""
        for start in range(0, len(uris), 100):
            batch = uris[start : start + 100]
            self.request("POST", f"playlists/{playlist_id}/items", body={"uris": batch})
            added(len(batch))

    def playlist_size(self, playlist_id: str) -> int | None:
        """Items in one of the user's playlists ('items' in 2026 replies, 'tracks' before); None if unknown."""
        result = _dict(self.request("GET", f"playlists/{playlist_id}", params={"fields": "items(total)"}))
        total = _dict(result.get("items") or result.get("tracks")).get("total")
        return total if isinstance(total, int) else None


def parse_track(item: object) -> Track | None:
    """A Track from a search or playlist item, or None when an essential field is missing or null."""
    if not isinstance(item, dict):
        return None
    inner = item.get("item") or item.get("track")  # playlist entries wrap tracks
    if isinstance(inner, dict):
        item = inner
    track_id, uri, name = _text(item.get("id")), _text(item.get("uri")), _text(item.get("name"))
    if not (track_id and uri and name):
        return None
    artists = item.get("artists")
    names = tuple(a["name"] for a in (artists if isinstance(artists, list) else [])
                  if isinstance(a, dict) and _text(a.get("name")))
    return Track(id=track_id, uri=uri, name=name, artists=names,
                 url=_text(_dict(item.get("external_urls")).get("spotify")) or "")


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Spotify's Retry-After in seconds, or None when it gave none (no wait time is made up)."""
    try:
        value = float((headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return None
    return max(0.0, value)


def _open_in_browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url)


# --- the sign-in callback ---------------------------------------------------------------------------
class _CallbackServer(http.server.ThreadingHTTPServer):
    """Answers the redirect that brings the authorisation code back.

    Each connection is served on a thread of its own with a read timeout, so an idle or slow
    connection (a browser's speculative preconnect, a port scanner) cannot hold up the wait
    loop: the deadline and cancel are checked every 0.2 s whatever the connections do.
    """

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], path: str, state: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.expected_path, self.expected_state = path, state
        self.code: str | None = None
        self.error: str | None = None
        self.answered = threading.Event()
        super().__init__(address, _CallbackHandler)
        self.timeout = 0.2  # handle_request() returns this often to check the deadline and cancel

    def wait(self, timeout: float, cancel: threading.Event | None, again: str, redirect_uri: str) -> str:
        deadline = time.monotonic() + timeout
        while not self.answered.is_set():
            if cancel is not None and cancel.is_set():
                raise SignInCancelled("Spotify sign-in was cancelled.")
            if time.monotonic() > deadline:
                # Spotify shows some refusals only in the browser; the commonest is the redirect URI.
                raise SignInCancelled(
                    f"Spotify sign-in did not finish within {timeout:.0f} s; {again} to try again. If Spotify's page "
                    f"said \"Invalid redirect URI\", add {redirect_uri} exactly under Redirect URIs in your app on "
                    f"developer.spotify.com (step 2 of {README_SETUP}).")
            self.handle_request()
        if self.error is not None:
            raise SpotifyError(f"Spotify sign-in failed ({self.error}); {again} to try again.")
        return self.code

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        """A browser that drops the connection is no reason for a traceback."""


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = CALLBACK_CONNECTION_TIMEOUT_S

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        if url.path != self.server.expected_path:
            self._reply(404, "Not the moodtunes sign-in address.")
            return
        if params.get("state") != self.server.expected_state:
            self._reply(400, "This sign-in link is stale; go back to moodtunes and start again.")
            return
        if "error" in params:
            self.server.error = params["error"][:200]
            self._reply(200, f"Spotify sign-in failed: {params['error']}. You can close this tab.")
            self.server.answered.set()
        elif params.get("code"):
            self.server.code = params["code"]
            self._reply(200, "Signed in to Spotify. You can close this tab and return to moodtunes.")
            self.server.answered.set()
        else:
            self._reply(400, "The redirect carried no authorisation code.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><meta charset=utf-8><title>moodtunes</title><p>{html.escape(text)}</p>".encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the browser went away first
            pass

    def log_message(self, format: str, *args) -> None:  # keep the code out of logs
        pass
