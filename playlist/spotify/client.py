"""The few Web API calls moodtunes makes, thin and careful, in the way of spotipy's client.

They are plain REST and go through ``requests`` directly rather than spotipy's request wrapper:
that wrapper assumes error bodies shaped ``{"error": {...}}`` (Spotify also answers
``{"error": "...", "error_description": "..."}``, which it turns into an AttributeError) and
hides empty bodies. Errors surface with Spotify's own reason; one token refresh on 401; 429
waited out only when short and stated; 5xx retried a bounded number of times on reads only (a
retried POST could create a second playlist).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from playlist.builder import SearchPage, Track
from playlist.spotify.auth import PLAYER_SCOPES, SpotifyAuth
from playlist.spotify.config import REQUEST_TIMEOUT_S
from playlist.spotify.errors import (
    NoDevice,
    Offline,
    PermissionNeeded,
    PremiumRequired,
    RateLimited,
    SignInRequired,
    SpotifyError,
    describe_api_error,
    error_details,
    explain,
    format_wait,
    no_device_message,
    permission_message,
    premium_message,
)
from playlist.spotify.parse import Device, Playback, as_dict, nonblank, parse_device, parse_playback, parse_track

MAX_RATE_LIMIT_WAIT_S = 3.0


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
                raise Offline(f"Cannot reach Spotify ({type(exc).__name__}); check your connection.") from exc
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
                raise self._player_refusal(response, path) or SpotifyError(describe_api_error(response,
                                                                                               self.auth.again))
            try:
                return response.json() if response.content else None
            except ValueError:
                return None

    def _player_refusal(self, response: requests.Response, path: str) -> SpotifyError | None:
        """The typed error for a refused player or library call, by Spotify's reason (None for others)."""
        _, message, reason = error_details(response)
        if reason == "PREMIUM_REQUIRED":
            return PremiumRequired(premium_message())
        gone = response.status_code == 404 and path.startswith("me/player") and "device" in (message or "").lower()
        if reason == "NO_ACTIVE_DEVICE" or gone:
            return NoDevice(no_device_message(self.auth.again))
        if response.status_code == 403 and "scope" in (message or "").lower():
            return PermissionNeeded(permission_message(self.auth.again))
        return None

    def search_tracks(self, query: str, limit: int = 10, offset: int = 0) -> SearchPage:
        result = self.request("GET", "search", params={"q": query, "type": "track", "limit": limit,
                                                        "offset": offset, "market": "from_token"})
        page = as_dict(as_dict(result).get("tracks"))
        items = page.get("items") if isinstance(page.get("items"), list) else []
        total = page.get("total") if isinstance(page.get("total"), int) else None
        return SearchPage([t for t in map(parse_track, items) if t is not None], raw_count=len(items), total=total)

    def top_artists(self, limit: int = 5) -> list[str]:
        result = self.request("GET", "me/top/artists", params={"limit": limit, "time_range": "medium_term"})
        items = as_dict(result).get("items")
        return [a["name"] for a in (items if isinstance(items, list) else [])
                if isinstance(a, dict) and nonblank(a.get("name"))]

    def create_playlist(self, name: str, description: str) -> tuple[str, str]:
        """(id, link) of a new private playlist of the current user (POST /me/playlists)."""
        created = as_dict(self.request("POST", "me/playlists",
                                       body={"name": name, "public": False, "description": description}))
        playlist_id = nonblank(created.get("id"))
        if playlist_id is None:  # an empty or partial reply: find what was created by its (timestamped) name
            playlist_id = self.find_playlist(name)
        if playlist_id is None:
            raise SpotifyError(f"Spotify answered the creation of {name} without saying which playlist it is; "
                               "look for it in your Spotify library.")
        link = nonblank(as_dict(created.get("external_urls")).get("spotify"))
        return playlist_id, link or f"https://open.spotify.com/playlist/{playlist_id}"

    def find_playlist(self, name: str) -> str | None:
        """The id of the user's most recent playlist called ``name`` (first page of GET /me/playlists)."""
        items = as_dict(self.request("GET", "me/playlists", params={"limit": 50})).get("items")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("name") == name and nonblank(item.get("id")):
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
        result = as_dict(self.request("GET", f"playlists/{playlist_id}", params={"fields": "items(total)"}))
        total = as_dict(result.get("items") or result.get("tracks")).get("total")
        return total if isinstance(total, int) else None


    # --- the player and the library (Premium; the DJ's scopes) --------------------------------------------
    def _player_call(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> object:
        # A sign-in from before the DJ lacks its scopes: ask for them, once, before Spotify refuses.
        if self.auth.missing_scopes(PLAYER_SCOPES):
            raise PermissionNeeded(permission_message(self.auth.again))
        return self.request(method, path, params=params, body=body)

    def devices(self) -> list[Device]:
        """The user's Spotify Connect devices (GET /me/player/devices)."""
        devices = as_dict(self._player_call("GET", "me/player/devices")).get("devices")
        return [d for d in map(parse_device, devices if isinstance(devices, list) else []) if d is not None]

    def playback(self) -> Playback | None:
        """What plays, where (GET /me/player); None when nothing does."""
        return parse_playback(self._player_call("GET", "me/player"))

    def upcoming(self) -> tuple[Track | None, list[Track]]:
        """(the playing track, the tracks after it: queue first, then the context) (GET /me/player/queue)."""
        body = as_dict(self._player_call("GET", "me/player/queue"))
        queue = body.get("queue")
        return (parse_track(body.get("currently_playing")),
                [t for t in map(parse_track, queue if isinstance(queue, list) else []) if t is not None])

    def play(self, context_uri: str, device_id: str | None = None) -> None:
        """Play a playlist (or album) from its start, on ``device_id`` or the active device."""
        self._player_call("PUT", "me/player/play", params={"device_id": device_id} if device_id else None,
                          body={"context_uri": context_uri})

    def add_to_queue(self, uri: str) -> None:
        """Queue a track after the playing one, on the active device (POST /me/player/queue)."""
        self._player_call("POST", "me/player/queue", params={"uri": uri})

    def next_track(self) -> None:
        """Skip to the next track on the active device (POST /me/player/next)."""
        self._player_call("POST", "me/player/next")

    def save_to_library(self, uris: list[str]) -> None:
        """Save tracks to the user's library (PUT /me/library, 2026's one call for every kind, 40 at most)."""
        for start in range(0, len(uris), 40):
            self._player_call("PUT", "me/library", params={"uris": ",".join(uris[start:start + 40])})


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Spotify's Retry-After in seconds, or None when it gave none (no wait time is made up)."""
    try:
        value = float((headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return None
    return max(0.0, value)
