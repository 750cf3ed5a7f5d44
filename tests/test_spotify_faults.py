"""Spotify for real accounts: every fault over real HTTP ends in a clear message and an intact token cache."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import spotipy
from conftest import ROOT, free_port
from fake_spotify import FakeSpotify, consent_in_browser

from playlist.builder import PAGE_SIZE, SearchPage, Track, build_playlist
from playlist.make import make_playlist
from playlist.profiles import load_profiles
from playlist.spotify import (
    RateLimited,
    SignInCancelled,
    SpotifyAuth,
    SpotifyClient,
    SpotifyError,
    load_config,
)


@pytest.fixture
def strict_spotify(monkeypatch):
    """The strict fake, with the redirect URI registered exactly as moodtunes uses it."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    fake = FakeSpotify(strict=True, registered_redirects=(redirect,)).start()
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("SPOTIPY_REDIRECT_URI", redirect)
    monkeypatch.setenv("SPOTIFY_API_BASE_URL", f"{fake.base_url}/v1")
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_BASE_URL", fake.base_url)
    yield fake
    fake.stop()


def signed_in(again: str = "press P") -> SpotifyAuth:
    auth = SpotifyAuth(load_config(), open_browser=consent_in_browser, again=again)
    auth.sign_in(timeout=10)
    return auth


def token_file():
    return load_config().token_path


def browser(url: str) -> None:
    """A user's browser: consents on Spotify's page; playlist links just open."""
    if "/authorize" in url:
        consent_in_browser(url)


def make(**kwargs):
    kwargs.setdefault("seed", 5)
    kwargs.setdefault("open_url", browser)
    kwargs.setdefault("again", "press P")  # as the window says it
    return make_playlist("happy", 0.8, "match", **kwargs)


# --- the strict service, end to end -------------------------------------------------------------
def test_the_whole_flow_works_against_the_strict_service(strict_spotify):
    result = make()
    (playlist,) = strict_spotify.playlists.values()
    assert result.track_count == 25 == len(playlist["uris"]) and result.url.endswith(playlist["id"])
    strict_spotify.expire_tokens()  # the next call refreshes, and the refresh token rotates
    before = json.loads(token_file().read_text())["refresh_token"]
    result = make_playlist("sad", 0.5, "lift", seed=2, open_url=browser)
    after = json.loads(token_file().read_text())["refresh_token"]
    assert result.track_count == 25 and before != after and after in strict_spotify.refresh_tokens


# --- nothing half-made --------------------------------------------------------------------------
def test_a_playlist_whose_tracks_fail_is_reported_with_its_link_and_completed_not_duplicated(strict_spotify):
    strict_spotify.fail("POST", "/v1/playlists/", 500, {"error": {"status": 500, "message": "Server error"}})
    first = make()
    (playlist,) = strict_spotify.playlists.values()
    assert first.url.endswith(playlist["id"]) and first.name == playlist["name"]
    assert first.track_count == 0 and playlist["uris"] == []
    assert first.notes[0].startswith("Created, 0 of 25 tracks added: Spotify is having problems (500")
    assert "press P" in first.notes[0]
    second = make()  # P again, a minute later
    assert len(strict_spotify.playlists) == 1  # no duplicate...
    assert second.reused and second.url == first.url and second.track_count == 25  # ...the same one, completed
    assert len(playlist["uris"]) == 25 and "25 more tracks added" in second.notes[0]


def test_p_again_for_the_same_mood_reuses_the_playlist_and_new_makes_another(strict_spotify):
    first = make()
    again = make()
    assert again.reused and again.url == first.url and len(strict_spotify.playlists) == 1
    assert "no duplicate made" in again.notes[0]
    make(new=True)
    assert len(strict_spotify.playlists) == 2
    make_playlist("sad", seed=1, open_url=lambda url: None)  # another mood is another playlist
    assert len(strict_spotify.playlists) == 3


def test_an_empty_reply_to_create_still_finds_the_playlist(strict_spotify):
    strict_spotify.empty_create_reply = True
    result = make()
    (playlist,) = strict_spotify.playlists.values()
    assert result.url == f"https://open.spotify.com/playlist/{playlist['id']}" and result.track_count == 25


def test_tracks_with_null_names_or_artists_are_skipped(strict_spotify):
    strict_spotify.odd_tracks = True
    result = make()
    assert result.track_count == 25 and all(t.name for t in result.tracks)


def test_create_without_a_name_is_refused_by_the_service(strict_spotify):
    client = SpotifyClient(signed_in())
    with pytest.raises(SpotifyError, match="400: Missing required field: name"):
        client.create_playlist("", "x")


# --- the token cache --------------------------------------------------------------------------
def test_a_refresh_reply_without_expires_in_still_works(strict_spotify):
    auth = signed_in()
    strict_spotify.expire_tokens()
    strict_spotify.refresh_without_expiry = True
    assert SpotifyClient(auth).search_tracks("genre:jazz").tracks
    cached = json.loads(token_file().read_text())
    assert cached["expires_at"] > time.time() + 3000  # Spotify's hour assumed


@contextlib.contextmanager
def read_only(folder):
    """A folder nobody may write in, root included (root ignores chmod, not the immutable flag)."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a folder read-only for root here (chattr +i failed)")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)


def test_a_read_only_config_folder_costs_only_the_saving(strict_spotify):
    auth = signed_in()
    saved = token_file().read_bytes()
    strict_spotify.expire_tokens()
    with read_only(token_file().parent):
        result = make()  # refreshes: the new token cannot be written
    assert result.track_count == 25
    assert any("could not be saved" in note and "MOODTUNES_CONFIG_DIR" in note for note in result.notes)
    assert token_file().read_bytes() == saved and auth.cache.path.exists()


def test_invalid_grant_keeps_the_token_another_moodtunes_just_refreshed(strict_spotify):
    window = signed_in()
    stale = json.loads(token_file().read_text())  # what the window read, a moment before...
    strict_spotify.expire_tokens()
    SpotifyClient(SpotifyAuth(load_config())).search_tracks("genre:pop")  # ...the CLI refreshed and rotated it
    rotated = json.loads(token_file().read_text())
    # The window's own refresh, with the refresh token it read, now meets invalid_grant.
    assert window._refresh(stale)["access_token"] == rotated["access_token"]
    assert json.loads(token_file().read_text()) == rotated  # nothing deleted
    assert SpotifyClient(window).search_tracks("genre:pop").tracks


def test_a_local_accounts_service_leaves_spotipy_s_own_classes_alone(strict_spotify):
    links = []
    auth = SpotifyAuth(load_config(), open_browser=consent_in_browser, show_link=links.append)
    auth.sign_in(timeout=10)
    assert links[0].startswith(f"{strict_spotify.base_url}/authorize?") and auth.signed_in
    auth.force_refresh()  # the refresh goes to the local service too
    assert strict_spotify.requests_seen.count(("POST", "/api/token")) == 2
    assert spotipy.SpotifyPKCE.OAUTH_AUTHORIZE_URL == "https://accounts.spotify.com/authorize"
    assert spotipy.SpotifyPKCE.OAUTH_TOKEN_URL == "https://accounts.spotify.com/api/token"


def test_a_cache_found_readable_by_others_is_made_private_again(strict_spotify):
    auth = signed_in()
    token_file().chmod(0o644)
    assert auth.signed_in
    assert stat.S_IMODE(token_file().stat().st_mode) == 0o600


# --- what the user is told ------------------------------------------------------------------------
@pytest.mark.parametrize("body,expected", [
    ({"error": "internal_error", "error_description": "Active premium subscription required for the owner of the app"},
     ["Active premium subscription required", "Premium", "step 5"]),
    ({"error": "internal_error", "error_description": "User not registered in the Developer Dashboard"},
     ["User not registered in the Developer Dashboard", "User Management", "step 4"]),
    ({"error": "invalid_client", "error_description": "Invalid client"}, ["client id", "SPOTIPY_CLIENT_ID"]),
])
def test_sign_in_refusals_say_why_and_what_to_do(strict_spotify, body, expected):
    strict_spotify.token_reply_fault = (403 if body["error"] == "internal_error" else 400, body)
    with pytest.raises(SpotifyError) as info:
        signed_in()
    for text in expected:
        assert text in str(info.value)
    assert "internal_error" not in str(info.value) and not token_file().exists()


@pytest.mark.parametrize("body", [
    {"error": "internal_error", "error_description": "User not registered in the Developer Dashboard"},
    {"error": {"status": 403, "message": "User not registered in the Developer Dashboard"}},
])
def test_web_api_refusals_say_why_in_either_shape(strict_spotify, body):
    client = SpotifyClient(signed_in())
    strict_spotify.fail("GET", "/v1/search", 403, body)
    with pytest.raises(SpotifyError, match="User Management.*step 4"):
        client.search_tracks("genre:pop")


def test_a_quota_429_says_it_is_a_quota(strict_spotify):
    client = SpotifyClient(signed_in())
    cached = token_file().read_bytes()
    strict_spotify.fail("GET", "/v1/search", 429, {"error": {"status": 429, "message": "Quota exceeded",
                                                             "reason": "QUOTA_EXCEEDED"}}, {"Retry-After": "1"})
    started = time.monotonic()
    with pytest.raises(RateLimited, match="quota") as info:
        client.search_tracks("genre:pop")
    assert "waiting a few seconds will not help" in str(info.value) and time.monotonic() - started < 1
    assert token_file().read_bytes() == cached


def test_a_429_without_retry_after_invents_no_wait(strict_spotify):
    client = SpotifyClient(signed_in())
    strict_spotify.fail("GET", "/v1/search", 429, {"error": {"status": 429, "message": "API rate limit exceeded"}})
    with pytest.raises(RateLimited) as info:
        client.search_tracks("genre:pop")
    message = str(info.value)
    assert "did not say for how long" in message and " 1 s" not in message and info.value.retry_after is None


def test_messages_name_the_front_ends_own_action(strict_spotify):
    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
    strict_spotify.expire_tokens()
    strict_spotify.refresh_error = "invalid_grant"
    result = run_cli("--mood", "happy", "--no-open")
    assert result.returncode == 2 and "run this command again to sign in again" in result.stderr
    assert "press P" not in result.stderr and "Traceback" not in result.stderr
    strict_spotify.refresh_error = None
    signed_in()  # the window, signed in again, meets the same expiry
    strict_spotify.expire_tokens()
    strict_spotify.refresh_error = "invalid_grant"
    with pytest.raises(SpotifyError, match="press P to sign in again"):
        make_playlist("happy", again="press P", open_url=lambda url: None)


# --- the sign-in callback --------------------------------------------------------------------------
def callback_port() -> int:
    return int(load_config().redirect_uri.rsplit(":", 1)[1].split("/")[0])


def idle_connection() -> socket.socket:
    """A connection that never sends a byte: a browser's preconnect, or a port scanner."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return socket.create_connection(("127.0.0.1", callback_port()), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_idle_connections_cannot_stall_the_sign_in(strict_spotify):
    idle = []

    def browser(url):
        idle.append(idle_connection())  # first an idle connection, then the real redirect
        consent_in_browser(url)

    started = time.monotonic()
    SpotifyAuth(load_config(), open_browser=browser).sign_in(timeout=30)
    assert time.monotonic() - started < 5 and idle
    idle[0].close()


def test_deadline_and_cancel_hold_with_an_idle_connection_open(strict_spotify):
    opened = []
    auth = SpotifyAuth(load_config(), open_browser=lambda url: opened.append(idle_connection()))
    started = time.monotonic()
    with pytest.raises(SignInCancelled, match="did not finish within 1 s"):
        auth.sign_in(timeout=1)
    assert time.monotonic() - started < 3
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(SignInCancelled, match="cancelled"):
        auth.sign_in(cancel=cancel, timeout=60)
    assert time.monotonic() - started < 3
    assert not auth.cache.path.exists()  # nothing half-signed-in is cached
    for conn in opened:
        conn.close()


def test_the_callback_escapes_what_it_echoes_and_ignores_dropped_connections(strict_spotify, capfd):
    pages = []

    def hostile(url):
        state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
        dropped = idle_connection()
        dropped.sendall(b"GET /callback?code=")  # half a request, then gone
        dropped.close()
        back = f"http://127.0.0.1:{callback_port()}/callback?error=<script>alert(1)</script>&state={state}"

        def visit():
            with urllib.request.urlopen(back, timeout=5) as response:
                pages.append(response.read().decode())

        threading.Thread(target=visit, daemon=True).start()

    with pytest.raises(SpotifyError, match="sign-in failed"):
        SpotifyAuth(load_config(), open_browser=hostile).sign_in(timeout=10)
    deadline = time.monotonic() + 5
    while not pages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "&lt;script&gt;" in pages[0] and "<script>" not in pages[0]
    assert "Traceback" not in capfd.readouterr().err


def sign_in_reading_the_page(fake: FakeSpotify) -> tuple[list[tuple[str, bool]], SpotifyError | None]:
    """Sign in as a browser would; each page the callback showed, with whether the token was stored by then."""
    pages: list[tuple[str, bool]] = []
    loaded = threading.Event()

    def on_page(text: str) -> None:
        pages.append((text, token_file().exists()))
        loaded.set()

    failure = None
    try:
        SpotifyAuth(load_config(), open_browser=lambda url: consent_in_browser(url, on_page),
                    again="run this command again").sign_in(timeout=10)
    except SpotifyError as exc:
        failure = exc
    assert loaded.wait(10), "the browser never got its page"
    return pages, failure


def test_the_browser_says_signed_in_only_once_the_token_is_stored(strict_spotify):
    pages, failure = sign_in_reading_the_page(strict_spotify)
    assert failure is None
    ((page, stored),) = pages
    assert "Signed in to Spotify" in page and stored


@pytest.mark.parametrize("status,body,expected", [
    (403, {"error": "internal_error", "error_description": "Active premium subscription required for the owner of "
                                                           "the app"}, "Premium"),
    (400, {"error": "invalid_grant", "error_description": "Invalid authorization code"}, "Invalid authorization code"),
    (200, {"access_token": "a", "token_type": "Bearer", "expires_in": 3600, "scope": "user-top-read"},
     "did not grant what moodtunes asks for"),  # no refresh token, too few scopes
], ids=["premium", "refused", "too-little-granted"])
def test_a_failed_token_exchange_is_what_the_browser_says(strict_spotify, status, body, expected):
    strict_spotify.token_reply_fault = (status, body)
    pages, failure = sign_in_reading_the_page(strict_spotify)
    ((page, stored),) = pages
    assert failure is not None and expected in str(failure)
    assert "Signed in" not in page and "Signing in to Spotify failed" in page and expected in page
    if status != 200:  # refused: nothing was stored (a reply that grants too little is stored, and unusable)
        assert not stored and not token_file().exists()
    assert not SpotifyAuth(load_config()).signed_in


def test_the_page_waits_for_the_outcome_only_so_long(monkeypatch):
    """A sign-in that never reports its outcome still gets the browser an answer, and not "signed in"."""
    from playlist.spotify import callback

    monkeypatch.setattr(callback, "OUTCOME_WAIT_S", 0.5)
    port = free_port()
    with callback.CallbackServer(("127.0.0.1", port), "/callback", "s") as server:
        pages = []
        threading.Thread(target=lambda: pages.append(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/callback?code=c&state=s", timeout=10).read().decode()), daemon=True).start()
        assert server.wait(5, None, "try again", "") == "c"
        deadline = time.monotonic() + 5
        while not pages and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "has not finished signing in" in pages[0] and "Signed in" not in pages[0]


def test_a_port_in_use_gets_advice_that_fits(strict_spotify):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", callback_port()))
        taken.listen()
        with pytest.raises(SpotifyError) as info:
            SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=5)
    message = str(info.value)
    assert "another program uses it" in message and "SPOTIPY_REDIRECT_URI" in message and "Redirect URIs" in message


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_loopback_redirect_is_served(monkeypatch):
    redirect = f"http://[::1]:{free_port()}/callback"
    fake = FakeSpotify(strict=True, registered_redirects=(redirect,)).start()
    try:
        monkeypatch.setenv("SPOTIPY_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("SPOTIPY_REDIRECT_URI", redirect)
        monkeypatch.setenv("SPOTIFY_API_BASE_URL", f"{fake.base_url}/v1")
        monkeypatch.setenv("SPOTIFY_ACCOUNTS_BASE_URL", fake.base_url)
        auth = SpotifyAuth(load_config(), open_browser=consent_in_browser)
        auth.sign_in(timeout=10)
        assert auth.signed_in
    finally:
        fake.stop()


# --- the command line -----------------------------------------------------------------------------
def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "playlist", *args], capture_output=True,
                          text=True, timeout=60, env=env or os.environ.copy())


def test_dry_run_without_credentials_is_one_line_and_opens_no_browser(tmp_path):
    record = tmp_path / "browser-was-opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\ntouch {record}\n")
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser), "DISPLAY": ":0"}
    result = run_cli("--mood", "sad", "--dry-run", env=env)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Spotify is not set up")
    assert "developer.spotify.com" in lines[0]
    time.sleep(0.5)
    assert not record.exists()


def test_cli_prints_a_sign_in_link_that_works(strict_spotify):
    """No browser opens (--no-open): the user copies the printed link into one."""
    app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "playlist", "--mood", "happy", "--no-open",
                            "--dry-run", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pages = []
    for line in app.stderr:
        if "open this link to sign in" in line:
            assert "If no browser opens" not in line  # none was opened
            consent_in_browser(line.rsplit(" ", 1)[1].strip(), pages.append)
            break
    out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    assert "Dry run" in out and load_config().token_path.exists()
    deadline = time.monotonic() + 5
    while not pages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Signed in to Spotify" in pages[0]


# --- the builder's paging ----------------------------------------------------------------------
class NullySearch:
    """Pages of 10 raw items where 3 are unusable (null), 40 results per query."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    def search_tracks(self, query: str, limit: int, offset: int) -> SearchPage:
        self.offsets.append(offset)
        start = sum(map(ord, query))
        raw = min(limit, max(0, 40 - offset))
        tracks = [Track(f"{start}-{offset + i}", f"spotify:track:{start}-{offset + i}", f"Song {start}-{offset + i}",
                        (f"Artist {start}-{offset + i}",)) for i in range(raw) if i % 10 < 7]
        return SearchPage(tracks, raw_count=raw, total=40)


def test_paging_goes_by_the_raw_item_count_not_the_usable_tracks():
    search = NullySearch()
    build_playlist(load_profiles(), "neutral", search, seed=0, size=60, max_pages=3)
    assert PAGE_SIZE in search.offsets and 2 * PAGE_SIZE in search.offsets  # pages after a page with nulls


class GenreFreeSearch(NullySearch):
    """A market where genre filters find nothing at all."""

    def search_tracks(self, query: str, limit: int, offset: int) -> SearchPage:
        if "genre:" in query:
            return SearchPage([], raw_count=0, total=0)
        return super().search_tracks(query, limit, offset)


@pytest.mark.parametrize("emotion", list(load_profiles()))
def test_fallback_keywords_fill_a_playlist_when_genre_filters_find_nothing(emotion):
    profile = load_profiles()[emotion]
    assert profile.fallback_queries and not any(":" in q for q in profile.fallback_queries)
    assert len(build_playlist(load_profiles(), emotion, GenreFreeSearch(), seed=1)) == profile.size


def test_a_redirect_uri_spotify_does_not_know_is_explained_when_the_wait_ends(strict_spotify, monkeypatch):
    """Spotify refuses an unregistered redirect URI in the browser only; the app can only say what to check."""
    unregistered = f"http://127.0.0.1:{free_port()}/callback/"  # a trailing slash: not the registered one
    monkeypatch.setenv("SPOTIPY_REDIRECT_URI", unregistered)
    refused = []

    def browser(url):
        try:
            urllib.request.urlopen(url, timeout=5)
        except urllib.error.HTTPError as exc:  # Spotify's error page
            refused.append(exc.read().decode())

    with pytest.raises(SignInCancelled) as info:
        SpotifyAuth(load_config(), open_browser=browser).sign_in(timeout=2)
    assert "Invalid redirect URI" in refused[0]
    assert f"add {unregistered} exactly under Redirect URIs" in str(info.value) and "step 2" in str(info.value)
    assert not token_file().exists()
