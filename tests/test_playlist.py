"""Playlists: profiles, the pure builder, and the whole Spotify flow over real HTTP."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT
from fake_spotify import consent_in_browser

from emotion.classes import EMOTIONS, STYLES
from emotion.errors import MoodtunesError
from emotion.paths import config_dir
from playlist.builder import PAGE_SIZE, SearchPage, Track, build_playlist, normalized_title
from playlist.make import make_playlist, playlist_name, web_search_url
from playlist.profiles import BUNDLED_PROFILES, load_profiles, plan_stages
from playlist.spotify import (
    NotConfigured,
    RateLimited,
    SignInRequired,
    SpotifyAuth,
    SpotifyClient,
    SpotifyError,
    load_config,
)
from playlist.spotify_setup import SETUP_STEPS, setup_lines, step_number


# --- profiles ---------------------------------------------------------------------------
def test_bundled_profiles_cover_every_emotion():
    profiles = load_profiles()
    assert set(profiles) == set(EMOTIONS)
    for p in profiles.values():
        assert -1 <= p.valence <= 1 and -1 <= p.arousal <= 1 and p.queries and p.size == 25


def test_lift_walks_from_sad_through_neutral_to_happy():
    stages = plan_stages(load_profiles(), "sad", "lift", 25)
    assert [p.emotion for p, _ in stages] == ["sad", "neutral", "happy"]
    assert sum(n for _, n in stages) == 25
    assert plan_stages(load_profiles(), "sad", "match", 25) == [(load_profiles()["sad"], 25)]


def test_profiles_take_valence_and_arousal_from_the_one_table_unless_a_user_moves_them(isolated_environment):
    for name, profile in load_profiles().items():
        assert (profile.valence, profile.arousal) == (STYLES[name].valence, STYLES[name].arousal)
    user_file = config_dir() / "profiles.toml"
    user_file.parent.mkdir(parents=True)
    bundled = BUNDLED_PROFILES.read_text(encoding="utf-8")
    user_file.write_text(bundled.replace("[neutral]\n", "[neutral]\nvalence = 0.2\narousal = -0.4\n"), encoding="utf-8")
    profiles = load_profiles()
    assert (profiles["neutral"].valence, profiles["neutral"].arousal) == (0.2, -0.4)
    assert (profiles["sad"].valence, profiles["sad"].arousal) == (STYLES["sad"].valence, STYLES["sad"].arousal)


def test_user_profiles_override_and_bad_ones_fail_clearly(isolated_environment):
    user_file = config_dir() / "profiles.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[happy\nvalence = 1")
    with pytest.raises(MoodtunesError, match="not valid TOML"):
        load_profiles()
    user_file.write_text("[happy]\nvalence = 0.5\narousal = 0.5\nqueries = ['x']\n")
    with pytest.raises(MoodtunesError, match=r"no \[angry\] profile"):
        load_profiles()


# --- builder ----------------------------------------------------------------------------
class CatalogSearch:
    """An in-memory search with Spotify's paging rules, recording every request."""

    def __init__(self, tracks: list[Track]):
        self.tracks = tracks
        self.calls: list[tuple[str, int, int]] = []

    def search_tracks(self, query: str, limit: int, offset: int) -> SearchPage:
        assert 1 <= limit <= 10, "Spotify rejects search limits above 10"
        self.calls.append((query, limit, offset))
        start = sum(map(ord, query)) % len(self.tracks)
        matches = [self.tracks[(start + 3 * i) % len(self.tracks)] for i in range(40)]
        page = matches[offset : offset + limit]
        return SearchPage(page, raw_count=len(page), total=len(matches))


def catalog() -> list[Track]:
    tracks = []
    for a in range(30):
        for k in range(6):
            title = f"Tune {a}.{k % 4}" + (" - 2011 Remaster" if k >= 4 else "")
            tracks.append(Track(f"id{a}-{k}", f"spotify:track:id{a}-{k}", title, (f"Band {a}", "Guest")))
    return tracks


def test_builder_dedupes_spreads_artists_and_pages_by_ten():
    search = CatalogSearch(catalog())
    tracks = build_playlist(load_profiles(), "happy", search, seed=1)
    assert len(tracks) == 25
    assert len({t.id for t in tracks}) == 25
    assert len({(t.main_artist, normalized_title(t.name)) for t in tracks}) == 25
    per_artist = {}
    for t in tracks:
        per_artist[t.main_artist] = per_artist.get(t.main_artist, 0) + 1
    assert max(per_artist.values()) <= 2
    assert all(limit == PAGE_SIZE and offset % PAGE_SIZE == 0 for _, limit, offset in search.calls)


def test_builder_is_deterministic_for_a_seed():
    first = build_playlist(load_profiles(), "sad", CatalogSearch(catalog()), strategy="lift", seed=7)
    again = build_playlist(load_profiles(), "sad", CatalogSearch(catalog()), strategy="lift", seed=7)
    other = build_playlist(load_profiles(), "sad", CatalogSearch(catalog()), strategy="lift", seed=8)
    assert first == again
    assert first != other


def test_builder_blends_in_taste():
    search = CatalogSearch(catalog())
    tracks = build_playlist(load_profiles(), "happy", search, seed=3, taste_artists=["Band 4"])
    assert any(q.startswith('artist:"Band 4"') for q, _, _ in search.calls)
    assert len(tracks) == 25


@pytest.mark.parametrize("title,expected", [
    ("Hey Jude - Remastered 2015", "hey jude"),
    ("Hey Jude (Live) [Bonus]", "hey jude"),
    ("Hey Jude feat. Someone", "hey jude"),
    ("HEY  JUDE!", "hey jude"),
])
def test_normalized_title(title, expected):
    assert normalized_title(title) == expected


# --- Spotify over HTTP ------------------------------------------------------------------
def sign_in(fake) -> SpotifyAuth:
    auth = SpotifyAuth(load_config(), open_browser=consent_in_browser)
    auth.sign_in(timeout=10)
    return auth


def test_full_flow_signs_in_with_pkce_and_creates_the_playlist(fake_spotify):
    opened = []

    def browser(url):
        opened.append(url)
        if "/authorize" in url:
            consent_in_browser(url)

    result = make_playlist("happy", 0.82, "match", seed=5, open_url=browser)
    assert result.track_count == 25 and len(result.tracks) == 25
    (playlist,) = fake_spotify.playlists.values()
    assert playlist["public"] is False
    assert playlist["name"].startswith("moodtunes · Happy · ")
    assert "happy (82% confidence)" in playlist["description"]
    assert playlist["uris"] == [t.uri for t in result.tracks]
    assert result.url == f"https://open.spotify.com/playlist/{playlist['id']}" and opened[-1] == result.url
    assert not any(path.startswith("/v1/users/") for _, path in fake_spotify.requests_seen)
    assert any("/v1/me/top/artists" in path for _, path in fake_spotify.requests_seen)
    # The token cache is private to the user.
    token_file = load_config().token_path
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert json.loads(token_file.read_text())["refresh_token"]
    # A second playlist reuses the sign-in: no browser this time.
    authorizations = sum("/authorize" in path for _, path in fake_spotify.requests_seen)
    make_playlist("sad", 0.6, "lift", seed=6, open_url=lambda url: None)
    assert sum("/authorize" in path for _, path in fake_spotify.requests_seen) == authorizations
    assert len(fake_spotify.playlists) == 2


def test_dry_run_creates_nothing(fake_spotify):
    sign_in(fake_spotify)
    result = make_playlist("neutral", dry_run=True, seed=1)
    assert len(result.tracks) == 25 and result.url is None
    assert fake_spotify.playlists == {}


def test_search_limit_above_ten_is_refused_by_spotify(fake_spotify):
    client = SpotifyClient(sign_in(fake_spotify))
    assert len(client.search_tracks("genre:jazz", limit=10).tracks) == 10
    with pytest.raises(SpotifyError, match="400"):
        client.search_tracks("genre:jazz", limit=11)


def test_expired_access_token_is_refreshed_once(fake_spotify):
    client = SpotifyClient(sign_in(fake_spotify))
    fake_spotify.expire_tokens()
    assert client.search_tracks("genre:pop", limit=5)
    assert ("POST", "/api/token") in fake_spotify.requests_seen


def test_invalid_grant_clears_the_dead_token_and_asks_to_sign_in(fake_spotify):
    auth = sign_in(fake_spotify)
    client = SpotifyClient(auth)
    fake_spotify.expire_tokens()
    fake_spotify.refresh_error = "invalid_grant"
    with pytest.raises(SignInRequired, match="sign in again"):
        client.search_tracks("genre:pop")
    assert not auth.cache.path.exists() and not auth.signed_in


def test_short_rate_limit_is_waited_out(fake_spotify):
    client = SpotifyClient(sign_in(fake_spotify))
    fake_spotify.rate_limit_next = 1
    started = time.monotonic()
    assert client.search_tracks("genre:rock")
    assert 0.9 < time.monotonic() - started < 5


def test_long_rate_limit_is_reported_not_slept_through(fake_spotify):
    auth = sign_in(fake_spotify)
    cached = auth.cache.path.read_bytes()
    fake_spotify.rate_limit_next = 7200
    started = time.monotonic()
    with pytest.raises(RateLimited, match="2 h 0 min") as info:
        SpotifyClient(auth).search_tracks("genre:rock")
    assert info.value.retry_after == 7200
    assert time.monotonic() - started < 3
    assert auth.cache.path.read_bytes() == cached


def test_server_errors_on_reads_are_retried_a_bounded_number_of_times(fake_spotify):
    auth = sign_in(fake_spotify)
    client = SpotifyClient(auth)
    fake_spotify.fail_next = [503, 502]
    assert client.search_tracks("genre:jazz")  # two failures, then success
    cached = auth.cache.path.read_bytes()
    fake_spotify.fail_next = [500] * 10
    with pytest.raises(SpotifyError, match="having problems"):
        client.search_tracks("genre:jazz")
    assert len(fake_spotify.fail_next) == 7  # one try and two retries, then it gave up
    assert auth.cache.path.read_bytes() == cached


def test_a_failed_playlist_creation_is_not_retried(fake_spotify):
    client = SpotifyClient(sign_in(fake_spotify))
    fake_spotify.fail_next = [502]
    with pytest.raises(SpotifyError, match="502"):
        client.create_playlist("moodtunes · Sad", "test")
    assert fake_spotify.playlists == {}  # a retried POST could have made a duplicate
    assert client.create_playlist("moodtunes · Sad", "test")[0] in fake_spotify.playlists


def test_refused_consent_is_reported(fake_spotify, monkeypatch):
    import urllib.parse
    import urllib.request

    def deny(url):
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        back = f"{query['redirect_uri']}?error=access_denied&state={query['state']}"
        threading.Thread(target=lambda: urllib.request.urlopen(back, timeout=5).read(), daemon=True).start()

    with pytest.raises(SpotifyError, match="access_denied"):
        SpotifyAuth(load_config(), open_browser=deny).sign_in(timeout=10)


def test_localhost_redirect_uri_is_rejected(fake_spotify, monkeypatch):
    monkeypatch.setenv("SPOTIPY_REDIRECT_URI", "http://localhost:8888/callback")
    with pytest.raises(SpotifyError, match="127.0.0.1"):
        load_config()


def test_no_client_id_gives_the_setup_steps_and_a_web_search():
    with pytest.raises(NotConfigured) as info:
        make_playlist("sad")
    message = str(info.value)
    assert "developer.spotify.com/dashboard" in message and "SPOTIPY_CLIENT_ID" in message
    assert "http://127.0.0.1:8888/callback" in message and "\n" not in message
    assert web_search_url("sad").startswith("https://open.spotify.com/search/")


def readme_setup_steps() -> tuple[list[str], list[int]]:
    """The numbered steps of the README's "Spotify setup" section, each with its continuation lines."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Spotify setup\n", 1)[1]
    section = section.split("\n#", 1)[0]
    steps = [step.strip() for step in re.split(r"^\d+\. ", section, flags=re.MULTILINE)[1:]]
    return steps, [int(n) for n in re.findall(r"^(\d+)\. ", section, flags=re.MULTILINE)]


def test_the_readme_lists_the_same_setup_steps_as_the_app():
    steps, numbers = readme_setup_steps()
    assert numbers == list(range(1, len(SETUP_STEPS) + 1))
    for readme_step, step in zip(steps, SETUP_STEPS, strict=True):
        assert step.topic.lower() in readme_step.lower(), (step.topic, readme_step[:80])


def test_the_setup_steps_tell_spotify_s_2026_rules():
    text = " ".join(setup_lines())
    for rule in ["Premium", "at most 5 users", "one development-mode client id", "http://127.0.0.1:8888/callback",
                 "User Management", "SPOTIPY_CLIENT_ID"]:
        assert rule in text, rule


def test_the_terminal_shows_one_setup_step_a_line_and_help_lists_them():
    result = run_cli("--mood", "sad", "--no-open")
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and lines[0].startswith("error: Spotify is not set up: no client id")
    assert f"in {len(SETUP_STEPS)} steps" in lines[0]
    assert [line[:5] for line in lines[1:-1]] == [f"  {i}) " for i in range(1, len(SETUP_STEPS) + 1)]
    assert "Premium" in lines[step_number("Premium")] and lines[-1].startswith("Meanwhile, Spotify's web search")
    playlist_help = subprocess.run([sys.executable, str(ROOT / "main.py"), "playlist", "--help"], capture_output=True,
                                   text=True, timeout=60).stdout.splitlines()
    for line in setup_lines():
        assert f"  {line}" in playlist_help
    main_help = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    assert "free" not in main_help and "Premium" in main_help and f"{len(SETUP_STEPS)} steps" in main_help


def test_a_dry_run_without_a_client_id_says_what_is_missing():
    result = run_cli("--mood", "sad", "--dry-run", "--no-open")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Spotify is not set up: no client id (SPOTIPY_CLIENT_ID, or client_id")
    assert f"`moodtunes playlist --help` lists the {len(SETUP_STEPS)} steps" in line


def test_client_id_can_come_from_config_toml():
    (config_dir()).mkdir(parents=True, exist_ok=True)
    (config_dir() / "config.toml").write_text('[spotify]\nclient_id = "abc123"\n')
    assert load_config().client_id == "abc123"


def test_playlist_name_format():
    from datetime import datetime

    assert playlist_name("happy", datetime(2026, 11, 21, 14, 3)) == "moodtunes · Happy · 2026-11-21 14:03"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "playlist", *args], capture_output=True,
                          text=True, timeout=60, env=os.environ.copy())


def test_cli_dry_run_prints_tracks(fake_spotify):
    sign_in(fake_spotify)
    result = run_cli("--mood", "happy", "--dry-run", "--seed", "3", "--no-open")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 26 and lines[0].startswith(" 1. Artist ") and "Dry run" in lines[-1]
    assert fake_spotify.playlists == {}


def test_cli_without_credentials_explains_setup():
    result = run_cli("--mood", "sad", "--no-open")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "developer.spotify.com/dashboard" in result.stderr
    assert "open.spotify.com/search/" in result.stderr


def test_cli_playlist_from_a_photo(fake_spotify, tmp_path, astronaut_bgr):
    import cv2
    from clips import face_scene

    sign_in(fake_spotify)
    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    result = run_cli("--photo", str(photo), "--dry-run", "--seed", "2", "--detector", "haar")
    assert result.returncode == 0, result.stderr
    assert f"{photo}: happy (" in result.stderr and "Dry run: moodtunes · Happy" in result.stdout
    empty = tmp_path / "wall.jpg"
    cv2.imwrite(str(empty), face_scene(astronaut_bgr)[:60, :60])
    result = run_cli("--photo", str(empty), "--detector", "haar")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: No face found in {empty}")
    result = run_cli("--photo", str(tmp_path / "missing.jpg"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "missing.jpg" in result.stderr
