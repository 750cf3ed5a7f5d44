"""A fake Spotify (Web API + accounts service) on 127.0.0.1, enforcing the 2026 rules.

Real HTTP over a real socket: moodtunes' client, spotipy and requests run unchanged
against it. Tests steer it through attributes (``rate_limit_next``, ``refresh_error``,
``expire_tokens()``) and ``fail()`` (any status and body on the next matching calls), and
read what happened from ``playlists`` and ``requests_seen``.

``strict=True`` behaves like the real service where the lenient default is forgiving: the
redirect URI must equal a registered one exactly, scopes are enforced per endpoint, a
refresh rotates the refresh token, GET playlist honours ``fields``, a playlist needs a name,
and search pages contain null items and end on a short page.

The player has state as Spotify keeps it: ``devices`` (one active computer by default;
``devices = []`` is no Spotify open anywhere, ``remove_device()`` one that disappears), what
plays (``playing``: a playlist context and the position in it), the user's ``queue`` and
``library``. ``premium = False`` answers every player command 403 PREMIUM_REQUIRED, as Spotify
does; ``finish_track()`` is the current track ending; ``offline = True`` is the network down.
``count()`` tells how many API requests came.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEARCH_MAX_LIMIT = 10


def make_catalog(n_artists: int = 40, per_artist: int = 8) -> list[dict]:
    """Tracks with repeated titles across versions, so de-duplication has work to do."""
    tracks = []
    for a in range(n_artists):
        artist = {"id": f"artist{a}", "name": f"Artist {a}"}
        for k in range(per_artist):
            title = f"Song {a}-{k % 5}" + (" (Remastered 2011)" if k >= 5 else "")
            tid = f"t{a:03d}{k:02d}"
            tracks.append({
                "id": tid, "uri": f"spotify:track:{tid}", "name": title, "artists": [artist],
                "external_urls": {"spotify": f"https://open.spotify.com/track/{tid}"},
            })
    return tracks


# Scopes each endpoint needs (POST /me/playlists: the private-playlist scope moodtunes asks for).
REQUIRED_SCOPES = {
    ("GET", "/v1/me/top/artists"): "user-top-read",
    ("POST", "/v1/me/playlists"): "playlist-modify-private",
    ("POST", "items"): "playlist-modify-private",
    ("GET", "/v1/me/playlists"): "playlist-read-private",
    ("GET", "/v1/me/player"): "user-read-playback-state",
    ("GET", "/v1/me/player/devices"): "user-read-playback-state",
    ("GET", "/v1/me/player/queue"): "user-read-playback-state",
    ("GET", "/v1/me/player/currently-playing"): "user-read-currently-playing",
    ("PUT", "/v1/me/player/play"): "user-modify-playback-state",
    ("POST", "/v1/me/player/queue"): "user-modify-playback-state",
    ("POST", "/v1/me/player/next"): "user-modify-playback-state",
    ("PUT", "/v1/me/library"): "user-library-modify",  # for track URIs; the spec lists others for other kinds
}
# The scopes moodtunes asked for before the DJ: what a refresh of an old sign-in keeps granting.
PLAYLIST_SCOPES = "playlist-modify-private playlist-modify-public playlist-read-private user-top-read"
LIBRARY_MAX_URIS = 40  # PUT /me/library takes at most 40 URIs (2026 spec)


def make_device(name: str, active: bool = False, kind: str = "Computer", device_id: str | None = None) -> dict:
    """A device as GET /me/player/devices lists it."""
    return {"id": device_id or hashlib.sha1(name.encode()).hexdigest()[:20], "is_active": active,
            "is_private_session": False, "is_restricted": False, "name": name, "type": kind,
            "volume_percent": 60, "supports_volume": True}


class FakeSpotify:
    def __init__(self, client_id: str = "test-client-id", strict: bool = False,
                 registered_redirects: tuple[str, ...] = ()) -> None:
        self.client_id = client_id
        self.strict = strict
        self.registered_redirects = set(registered_redirects)
        self.token_scopes: dict[str, set[str]] = {}
        self.faults: list[dict] = []  # see fail()
        self.token_reply_fault: tuple[int, dict | None] | None = None  # next /api/token answer
        self.refresh_without_expiry = False
        self.empty_create_reply = False
        self.odd_tracks = False  # search results with null names and null artists
        self.catalog = make_catalog()
        self.user_id = "moodtunes-tester"
        self.codes: dict[str, dict] = {}  # authorization code -> {challenge, redirect_uri, scope}
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.playlists: dict[str, dict] = {}
        self.requests_seen: list[tuple[str, str]] = []
        self.rate_limit_next: float | None = None  # Retry-After seconds for the next API call
        self.fail_next: list[int] = []  # status codes (e.g. 503) for the next API calls, in order
        self.refresh_error: str | None = None  # e.g. "invalid_grant"
        self.top_artists = ["Artist 3", "Artist 7"]
        self.refresh_scopes: dict[str, str] = {}  # refresh token -> the scopes its sign-in granted
        self.premium = True
        self.devices: list[dict] = [make_device("Tester's laptop", active=True)]
        self.playing: dict | None = None  # {"context_uri", "uris", "index", "is_playing"}
        self.queue: list[str] = []  # what the user (or moodtunes) queued, played before the context goes on
        self.library: list[str] = []
        self.offline = False  # the network is down: connections close without an answer
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeSpotify:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, path: str, status: int, body: dict | None = None, headers: dict | None = None,
             times: int = 1) -> None:
        """The next ``times`` calls of ``method`` on a path starting with ``path`` get this answer."""
        self.faults.append({"method": method, "path": path, "status": status, "body": body,
                            "headers": headers or {}, "times": times})

    def _fault_for(self, method: str, path: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault["method"] == method and path.startswith(fault["path"]) and fault["times"] > 0:
                    fault["times"] -= 1
                    return fault
        return None

    def count(self, method: str | None = None, prefix: str = "/v1/") -> int:
        """How many requests (of ``method``, on paths starting with ``prefix``) the fake received."""
        return sum(1 for m, path in list(self.requests_seen)
                   if (method is None or m == method) and path.startswith(prefix))

    def remove_device(self, device_id: str) -> None:
        """The device is gone (laptop closed, app quit): it leaves the list, and what played on it stops."""
        with self.lock:
            self.devices = [d for d in self.devices if d["id"] != device_id]
            if self.playing is not None and self.playing.get("device_id") == device_id:
                self.playing = None

    def active_device(self) -> dict | None:
        return next((d for d in self.devices if d["is_active"]), None)

    def track(self, uri: str) -> dict:
        """The catalog's track object for ``uri`` (a minimal one for a URI the catalog lacks)."""
        found = next((t for t in self.catalog if t["uri"] == uri), None)
        return found or {"id": uri.rsplit(":", 1)[-1], "uri": uri, "name": uri, "artists": [],
                         "external_urls": {}}

    def now_playing(self) -> str | None:
        """The URI of the track that plays, or None."""
        with self.lock:
            playing = self.playing
            return playing["current"] if playing else None

    def finish_track(self) -> None:
        """The playing track ends: the queue goes first, then the context goes on."""
        with self.lock:
            self._advance()

    def _advance(self) -> None:
        playing = self.playing
        if playing is None:
            return
        if self.queue:
            playing["current"] = self.queue.pop(0)
            return
        playing["index"] += 1
        if playing["index"] < len(playing["uris"]):
            playing["current"] = playing["uris"][playing["index"]]
        else:
            self.playing = None

    def upcoming(self) -> list[str]:
        with self.lock:
            if self.playing is None:
                return []
            return list(self.queue) + self.playing["uris"][self.playing["index"] + 1:]

    def expire_tokens(self) -> None:
        """Every issued access token now answers 401, as after expiry or revocation."""
        with self.lock:
            self.access_tokens.clear()

    def _issue_tokens(self, scope: str, refresh: str | None = None) -> dict:
        access = secrets.token_urlsafe(16)
        refresh = refresh or secrets.token_urlsafe(16)
        with self.lock:
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
            self.refresh_scopes[refresh] = scope
            self.token_scopes[access] = set(scope.split())
        return {"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": refresh, "scope": scope}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, headers: dict | None = None) -> None:
                self._send(status, {"error": {"status": status, "message": message}}, headers)

            def _player_error(self, status: int, message: str, reason: str) -> None:
                """A refused player command, in the shape Spotify sends: with a machine-readable reason."""
                self._send(status, {"error": {"status": status, "message": f"Player command failed: {message}",
                                              "reason": reason}})

            def _player_target(self, params: dict) -> dict | None:
                """The device a player command goes to (answering the refusal itself when there is none)."""
                if not fake.premium:
                    self._player_error(403, "Premium required", "PREMIUM_REQUIRED")
                    return None
                wanted = params.get("device_id")
                with fake.lock:
                    device = (next((d for d in fake.devices if d["id"] == wanted), None) if wanted
                              else fake.active_device())
                if device is None and wanted:
                    self._error(404, "Device not found")
                elif device is None:
                    self._player_error(404, "No active device found", "NO_ACTIVE_DEVICE")
                return device

            def _playback_state(self) -> dict | None:
                with fake.lock:
                    playing, device = fake.playing, fake.active_device()
                    if playing is None or device is None:
                        return None
                    return {"device": dict(device), "repeat_state": "off", "shuffle_state": False,
                            "context": {"type": "playlist", "uri": playing["context_uri"]},
                            "timestamp": 0, "progress_ms": 0, "is_playing": True,
                            "item": fake.track(playing["current"]), "currently_playing_type": "track"}

            def _unreachable(self) -> bool:
                """With the network down, the connection closes unanswered (and nothing is counted)."""
                if fake.offline:
                    self.close_connection = True
                return fake.offline

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            # --- accounts service -------------------------------------------------------
            def _authorize(self, params: dict) -> None:
                if params.get("client_id") != fake.client_id:
                    self._error(400, "INVALID_CLIENT: Invalid client")
                    return
                redirect = params.get("redirect_uri", "")
                if urllib.parse.urlsplit(redirect).hostname == "localhost":
                    self._error(400, "INVALID_CLIENT: Insecure redirect URI")
                    return
                if fake.strict and redirect not in fake.registered_redirects:
                    self._error(400, "INVALID_CLIENT: Invalid redirect URI")
                    return
                if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
                    self._error(400, "code_challenge required")
                    return
                code = secrets.token_urlsafe(12)
                fake.codes[code] = {"challenge": params["code_challenge"], "redirect_uri": redirect,
                                    "scope": params.get("scope", "")}
                query = urllib.parse.urlencode({"code": code, "state": params.get("state", "")})
                self.send_response(302)
                self.send_header("Location", f"{redirect}?{query}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _token(self) -> None:
                form = dict(urllib.parse.parse_qsl(self._body().decode()))
                if fake.token_reply_fault is not None:
                    (status, body), fake.token_reply_fault = fake.token_reply_fault, None
                    self._send(status, body)
                    return
                if form.get("client_id") != fake.client_id:
                    self._send(400, {"error": "invalid_client", "error_description": "Invalid client"})
                    return
                if form.get("grant_type") == "authorization_code":
                    grant = fake.codes.pop(form.get("code", ""), None)
                    verifier = form.get("code_verifier", "").encode()
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).decode().rstrip("=")
                    if grant is None or grant["challenge"] != challenge or grant["redirect_uri"] != form.get(
                            "redirect_uri"):
                        self._send(400, {"error": "invalid_grant", "error_description": "Invalid authorization code"})
                        return
                    self._send(200, fake._issue_tokens(grant["scope"].replace("+", " ")))
                elif form.get("grant_type") == "refresh_token":
                    if fake.refresh_error or form.get("refresh_token") not in fake.refresh_tokens:
                        self._send(400, {"error": fake.refresh_error or "invalid_grant",
                                         "error_description": "Refresh token revoked"})
                        return
                    # A refresh grants what the sign-in granted: an old sign-in gains no new scopes.
                    token = fake._issue_tokens(fake.refresh_scopes.get(form["refresh_token"], PLAYLIST_SCOPES))
                    if fake.strict:  # rotation: the old refresh token is dead from now on
                        with fake.lock:
                            fake.refresh_tokens.discard(form["refresh_token"])
                    else:  # Spotify often keeps the old refresh token
                        fake.refresh_tokens.discard(token.pop("refresh_token"))
                    if fake.refresh_without_expiry:
                        token.pop("expires_in")
                    self._send(200, token)
                else:
                    self._send(400, {"error": "unsupported_grant_type"})

            # --- Web API ----------------------------------------------------------------
            def _authorized(self, method: str = "GET", path: str = "") -> bool:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                if not auth.startswith("Bearer ") or token not in fake.access_tokens:
                    self._error(401, "The access token expired" if auth else "No token provided")
                    return False
                fault = fake._fault_for(method, path)
                if fault is not None:
                    self._send(fault["status"], fault["body"], fault["headers"])
                    return False
                needed = REQUIRED_SCOPES.get((method, "items" if path.endswith("/items") else path))
                if fake.strict and needed and needed not in fake.token_scopes.get(token, set()):
                    self._error(403, "Insufficient client scope")
                    return False
                if fake.fail_next:
                    self._error(fake.fail_next.pop(0), "Service unavailable")
                    return False
                if fake.rate_limit_next is not None:
                    retry_after, fake.rate_limit_next = fake.rate_limit_next, None
                    self._error(429, "API rate limit exceeded", {"Retry-After": str(int(retry_after))})
                    return False
                return True

            def do_GET(self):  # noqa: N802
                if self._unreachable():
                    return
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                fake.requests_seen.append(("GET", url.path + ("?" + url.query if url.query else "")))
                if url.path == "/authorize":
                    self._authorize(params)
                    return
                if not self._authorized("GET", url.path):
                    return
                if url.path == "/v1/search":
                    self._search(params)
                elif url.path == "/v1/me":
                    self._send(200, {"id": fake.user_id, "display_name": "Tester"})
                elif url.path == "/v1/me/top/artists":
                    limit = int(params.get("limit", 20))
                    items = [{"id": n.lower().replace(" ", ""), "name": n} for n in fake.top_artists[:limit]]
                    self._send(200, {"items": items, "total": len(items)})
                elif url.path == "/v1/me/playlists":
                    items = [{"id": p["id"], "name": p["name"]} for p in reversed(list(fake.playlists.values()))]
                    self._send(200, {"items": items[: int(params.get("limit", 20))], "total": len(items)})
                elif url.path in ("/v1/me/player", "/v1/me/player/currently-playing"):
                    state = self._playback_state()
                    if state is None:  # nothing plays: Spotify answers 204 without a body
                        self._send(204)
                    elif url.path == "/v1/me/player":
                        self._send(200, state)
                    else:
                        self._send(200, {k: state[k] for k in ("context", "timestamp", "progress_ms", "is_playing",
                                                               "item", "currently_playing_type")})
                elif url.path == "/v1/me/player/devices":
                    with fake.lock:
                        self._send(200, {"devices": [dict(d) for d in fake.devices]})
                elif url.path == "/v1/me/player/queue":
                    current = fake.now_playing()
                    self._send(200, {"currently_playing": fake.track(current) if current else None,
                                     "queue": [fake.track(u) for u in fake.upcoming()[:20]]})
                elif url.path.startswith("/v1/playlists/"):
                    playlist = fake.playlists.get(url.path.split("/")[3])
                    if playlist is None:
                        self._error(404, "Not found")
                        return
                    # 2026 responses name the contents "items" (older ones said "tracks").
                    full = {"id": playlist["id"], "name": playlist["name"], "public": playlist["public"],
                            "description": playlist["description"], "items": {"total": len(playlist["uris"])}}
                    if fake.strict and params.get("fields") == "items(total)":
                        full = {"items": {"total": len(playlist["uris"])}}
                    elif fake.strict and params.get("fields"):
                        self._error(400, "Unsupported fields filter in this fake")
                        return
                    self._send(200, full)
                else:
                    self._error(404, "Service not found")

            def _search(self, params: dict) -> None:
                limit = int(params.get("limit", 5))
                offset = int(params.get("offset", 0))
                if limit > SEARCH_MAX_LIMIT or limit < 1:
                    self._error(400, "Invalid limit")
                    return
                if params.get("type") != "track" or not params.get("q"):
                    self._error(400, "Bad search request")
                    return
                # A deterministic, query-dependent slice of the catalog, 35 results per query.
                digest = int(hashlib.sha256(params["q"].encode()).hexdigest(), 16)
                start = digest % len(fake.catalog)
                matches = [fake.catalog[(start + 7 * i) % len(fake.catalog)] for i in range(35)]
                if params["q"].startswith("artist:"):
                    name = params["q"].split('"')[1]
                    matches = [t for t in fake.catalog if t["artists"][0]["name"] == name]
                if fake.odd_tracks:
                    matches = [{**t, "name": None} if i % 3 == 0 else {**t, "artists": [None]} if i % 3 == 1 else t
                               for i, t in enumerate(matches)]
                if fake.strict:  # unavailable tracks come back as nulls, in place
                    matches = [None if i % 4 == 3 else t for i, t in enumerate(matches)]
                page = matches[offset:offset + limit]
                self._send(200, {"tracks": {"items": page, "total": len(matches), "limit": limit, "offset": offset}})

            def do_PUT(self):  # noqa: N802
                if self._unreachable():
                    return
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                fake.requests_seen.append(("PUT", url.path))
                if not self._authorized("PUT", url.path):
                    return
                body = json.loads(self._body() or b"null")
                if url.path == "/v1/me/player/play":
                    self._play(params, body if isinstance(body, dict) else {})
                elif url.path == "/v1/me/library":
                    uris = [u for u in params.get("uris", "").split(",") if u]
                    if not uris or len(uris) > LIBRARY_MAX_URIS or not all(
                            u.startswith("spotify:") and u.count(":") == 2 for u in uris):
                        self._error(400, "Invalid uris: give 1 to 40 Spotify URIs, comma-separated")
                        return
                    with fake.lock:
                        fake.library.extend(u for u in uris if u not in fake.library)
                    self._send(200)
                else:
                    self._error(404, "Service not found")

            def _play(self, params: dict, body: dict) -> None:
                device = self._player_target(params)
                if device is None:
                    return
                context = body.get("context_uri")
                if context is None:  # resume what played
                    if fake.playing is None:
                        self._error(400, "Nothing to resume: give a context_uri or uris")
                        return
                    self._send(204)
                    return
                playlist = fake.playlists.get(str(context).removeprefix("spotify:playlist:"))
                if not str(context).startswith("spotify:playlist:") or playlist is None:
                    self._error(404, "Context not found")
                    return
                if not playlist["uris"]:
                    self._error(400, "The playlist is empty")
                    return
                with fake.lock:
                    for d in fake.devices:  # playing moves to the target device
                        d["is_active"] = d["id"] == device["id"]
                    fake.playing = {"context_uri": context, "uris": list(playlist["uris"]), "index": 0,
                                    "current": playlist["uris"][0], "device_id": device["id"]}
                self._send(204)

            def do_POST(self):  # noqa: N802
                if self._unreachable():
                    return
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                fake.requests_seen.append(("POST", url.path))
                if url.path == "/api/token":
                    self._token()
                    return
                if not self._authorized("POST", url.path):
                    return
                body = json.loads(self._body() or b"null")
                if url.path in ("/v1/me/player/queue", "/v1/me/player/next"):
                    if self._player_target(params) is None:
                        return
                    with fake.lock:
                        if url.path.endswith("/next"):
                            fake._advance()
                        elif not params.get("uri", "").startswith(("spotify:track:", "spotify:episode:")):
                            self._error(400, "Invalid uri: a track or an episode")
                            return
                        else:
                            fake.queue.append(params["uri"])
                    self._send(204)
                elif url.path.startswith("/v1/users/"):
                    self._error(403, "Forbidden: use POST /me/playlists")
                elif url.path == "/v1/me/playlists":
                    if not isinstance(body, dict) or not body.get("name"):
                        self._error(400, "Missing required field: name")
                        return
                    pid = secrets.token_hex(8)
                    fake.playlists[pid] = {"id": pid, "name": body["name"], "public": body.get("public"),
                                           "description": body.get("description", ""), "uris": []}
                    if fake.empty_create_reply:
                        self._send(201, None)
                        return
                    self._send(201, {"id": pid, "name": body["name"], "uri": f"spotify:playlist:{pid}",
                                     "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"}})
                elif url.path.startswith("/v1/playlists/") and url.path.endswith("/items"):
                    playlist = fake.playlists.get(url.path.split("/")[3])
                    uris = body.get("uris") if isinstance(body, dict) else body
                    if playlist is None:
                        self._error(404, "Not found")
                    elif not isinstance(uris, list) or len(uris) > 100:
                        self._error(400, "At most 100 items per request")
                    else:
                        playlist["uris"].extend(uris)
                        self._send(201, {"snapshot_id": secrets.token_hex(6)})
                elif url.path.startswith("/v1/playlists/") and url.path.endswith("/tracks"):
                    self._error(403, "Forbidden: use /items")
                else:
                    self._error(404, "Service not found")

        return Handler


def consent_in_browser(url: str, on_page: Callable[[str], object] | None = None) -> None:
    """What a user's browser does: open the consent page, approve, follow the redirect.

    Like webbrowser.open, it returns at once; the page loads on its own thread and, once it has
    loaded, ``on_page`` gets the text that moodtunes' callback page showed.
    """
    import urllib.request

    def visit() -> None:
        with urllib.request.urlopen(url, timeout=60) as response:  # follows the 302 to the app's callback
            page = response.read().decode("utf-8", "replace")
        if on_page is not None:
            on_page(page)

    threading.Thread(target=visit, daemon=True).start()
