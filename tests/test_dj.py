"""The DJ: its decisions on the stream's clock, and what it does on the (fake) Spotify over real HTTP."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from dj_requests import mood_stream, simulate
from fake_spotify import consent_in_browser, make_device

from emotion.paths import config_dir
from playlist.dj import DJ, ERROR, KEEP, LIKE, PLAY, QUEUE, SKIP, FollowSettings, Request
from playlist.dj_worker import DJSession, DJWorker, signed_in_client
from playlist.make import make_playlist
from playlist.spotify import (
    NoDevice,
    PermissionNeeded,
    PremiumRequired,
    SpotifyAuth,
    SpotifyClient,
    load_config,
)
from playlist.spotify.auth import PLAYLIST_SCOPES
from playlist.taste import TASTE_FILENAME, TasteMemory

NO_DEVICE_LINE = "open Spotify on any device (phone, desktop, web player)"


def feed(dj: DJ, frames) -> list[Request]:
    return [r for r in (dj.observe(t, mood) for t, mood in frames) if r is not None]


def stream(*parts: tuple[str | None, float], fps: float = 10, start: float = 0.0):
    """Frames at ``fps``: each part is (mood, seconds)."""
    t = start
    for mood, seconds in parts:
        for _ in range(round(seconds * fps)):
            yield round(t, 6), mood
            t += 1 / fps


# --- decisions, on the stream's clock ------------------------------------------------------------
def test_the_first_mood_that_holds_starts_the_music_once():
    requests = feed(DJ(), stream(("happy", 60)))
    assert [(r.kind, r.mood, r.t) for r in requests] == [(PLAY, "happy", 20.0)]


def test_the_dj_never_reacts_to_single_frames():
    flicker = [(i / 10, ("happy", "sad", "angry")[i % 3]) for i in range(3000)]
    assert feed(DJ(), flicker) == []
    assert feed(DJ(FollowSettings(hold_s=0)), [(0.0, "sad")]) == []  # not even with no hold asked for


def test_a_new_mood_is_followed_after_hold_and_gap():
    dj = DJ()
    requests = feed(dj, stream(("happy", 60), ("sad", 100), ("happy", 30), ("sad", 100)))
    # happy starts at 20; sad from 60 holds 20 s at 80, but the music changed at 20: the gap ends at 140.
    assert [(r.kind, r.mood, r.t) for r in requests if r.kind != KEEP] == [(PLAY, "happy", 20.0), (QUEUE, "sad", 140.0)]
    queued = next(r for r in requests if r.kind == QUEUE)
    assert queued.count >= 3 and queued.held_s >= 20
    # While sad holds on queued tracks, the DJ looks at the queue, at most every 30 s.
    keeps = [r.t for r in requests if r.kind == KEEP]
    assert keeps and all(b - a >= 30 for a, b in zip([140.0, *keeps[:-1]], keeps, strict=True))
    # Back to happy at 160 for 30 s (gap from 140 ends at 260): nothing; then sad again holds: music is still sad.
    assert dj.music_mood == "sad"


def test_no_face_or_a_pause_changes_nothing():
    dj = DJ()
    requests = feed(dj, stream(("happy", 10), (None, 60), ("happy", 10)))
    # The minute without a face neither broke the hold nor counted as one (at most one frame gap, 2 s).
    (play,) = requests
    assert play.kind == PLAY and play.t == pytest.approx(78.1, abs=0.11)
    # A pause: frames stop for 5 minutes, then come back with the same mood: it holds only as frames show it.
    dj = DJ()
    assert feed(dj, stream(("sad", 5))) == []
    assert feed(dj, stream(("sad", 5), start=300.0)) == []


def test_decisions_are_the_same_however_the_stream_is_read():
    frames = list(stream(("happy", 50), ("sad", 200), ("neutral", 200), fps=15))
    once = feed(DJ(FollowSettings(hold_s=10, gap_s=60)), frames)
    again = feed(DJ(FollowSettings(hold_s=10, gap_s=60)), frames)
    assert once == again and len([r for r in once if r.kind == QUEUE]) == 2


def test_a_failed_request_leaves_the_music_and_asks_again_later():
    dj = DJ()
    (play,) = feed(dj, stream(("happy", 21)))
    dj.settle(play, failed=True)
    assert dj.music_mood is None
    retried = feed(dj, stream(("happy", 40), start=21.0))
    # 30 s after the failure was heard of (at the last frame, 20.9), not at once
    assert [(r.kind, r.t) for r in retried] == [(PLAY, pytest.approx(50.9))]


def test_following_off_decides_nothing_but_p_still_plays():
    dj = DJ(following=False)
    assert feed(dj, stream(("happy", 60))) == []
    assert dj.play_now(61.0, "happy").kind == PLAY and dj.music_mood == "happy"


# --- Spotify over HTTP -----------------------------------------------------------------------------
def sign_in() -> SpotifyAuth:
    auth = SpotifyAuth(load_config(), open_browser=consent_in_browser)
    auth.sign_in(timeout=10)
    return auth


def taste() -> TasteMemory:
    return TasteMemory(config_dir() / TASTE_FILENAME)


def session(following: bool = True, said: list | None = None, **settings) -> DJSession:
    worker = DJWorker(signed_in_client, taste(), say=(said.append if said is not None else lambda line: None))
    return DJSession(worker, FollowSettings(**settings), following=following)


def test_p_plays_the_playlist_on_the_active_device(fake_spotify):
    sign_in()
    result = make_playlist("happy", seed=3, play=True)
    (playlist,) = fake_spotify.playlists.values()
    assert result.device == "Tester's laptop" and result.play_problem is None
    assert fake_spotify.playing["context_uri"] == f"spotify:playlist:{playlist['id']}"
    assert fake_spotify.now_playing() == result.tracks[0].uri


def test_with_none_active_the_one_available_device_plays_by_its_id(fake_spotify):
    sign_in()
    fake_spotify.devices = [make_device("Phone", kind="Smartphone")]
    result = make_playlist("sad", seed=3, play=True)
    assert result.device == "Phone" and fake_spotify.devices[0]["is_active"]
    assert fake_spotify.playing is not None


def test_with_no_device_one_line_and_the_link_still_there(fake_spotify):
    sign_in()
    fake_spotify.devices = []
    result = make_playlist("sad", seed=3, play=True, again="press P again")
    assert isinstance(result.play_error, NoDevice) and "\n" not in result.play_problem
    assert f"{NO_DEVICE_LINE} and press P again" in result.play_problem
    assert result.url and result.track_count == 25 and fake_spotify.playing is None


def test_a_device_that_disappears_before_play_is_looked_up_again(fake_spotify):
    sign_in()
    fake_spotify.devices = [make_device("Old laptop"), make_device("Desktop app", active=True)]
    fake_spotify.fail("PUT", "/v1/me/player/play", 404, {"error": {"status": 404, "message": "Device not found"}})
    result = make_playlist("happy", seed=1, play=True)
    assert result.device == "Desktop app" and fake_spotify.playing is not None


def test_without_premium_the_playlist_is_made_and_one_line_says_why(fake_spotify):
    sign_in()
    fake_spotify.premium = False
    result = make_playlist("happy", seed=1, play=True)
    assert isinstance(result.play_error, PremiumRequired) and "Premium" in result.play_problem
    assert result.track_count == 25 and fake_spotify.playing is None


def test_an_older_sign_in_makes_playlists_and_asks_once_for_the_new_permission(fake_spotify):
    sign_in()
    token_path = load_config().token_path
    token = json.loads(token_path.read_text())
    token["scope"] = " ".join(PLAYLIST_SCOPES)  # what moodtunes asked before the DJ
    token_path.write_text(json.dumps(token))
    fake_spotify.token_scopes[token["access_token"]] = set(PLAYLIST_SCOPES)
    no_browser = make_playlist("happy", seed=1, play=True, sign_in=False, again="press P")
    assert no_browser.track_count == 25  # the playlist is made with the old sign-in...
    assert isinstance(no_browser.play_error, PermissionNeeded)  # ...and playing asks for the permission, saying why
    why = no_browser.play_problem
    assert "permission to control playback" in why and "press P to sign in" in why
    lines = []
    browser = lambda url: consent_in_browser(url) if "/authorize" in url else None  # noqa: E731
    asked = make_playlist("happy", seed=1, play=True, new=True, open_url=browser, progress=lines.append)
    assert asked.device == "Tester's laptop"
    assert sum("once more" in line for line in lines) == 1
    sign_ins = sum("/authorize" in path for _, path in fake_spotify.requests_seen)
    make_playlist("sad", seed=2, play=True, open_url=browser)  # asked once: not again
    assert sum("/authorize" in path for _, path in fake_spotify.requests_seen) == sign_ins


def test_the_strict_service_refuses_player_calls_without_the_scope(fake_spotify):
    fake_spotify.strict = True
    fake_spotify.registered_redirects.add(os.environ["SPOTIPY_REDIRECT_URI"])
    auth = sign_in()
    token = auth.cache.get_cached_token()
    fake_spotify.token_scopes[token["access_token"]] = set(PLAYLIST_SCOPES)  # the cache claims more than granted
    with pytest.raises(PermissionNeeded):
        SpotifyClient(auth).add_to_queue("spotify:track:t00000")


def run_playlist_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "playlist", "--no-open", *args],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def test_the_playlist_command_plays_unless_told_not_to(fake_spotify):
    sign_in()
    made = run_playlist_cli("--mood", "happy", "--seed", "1", "--no-play")
    assert made.returncode == 0 and "Playing" not in made.stdout and fake_spotify.playing is None
    played = run_playlist_cli("--mood", "sad", "--seed", "1")
    assert played.returncode == 0, played.stderr
    assert played.stdout.splitlines()[-1] == "Playing on Tester's laptop."
    assert fake_spotify.playing["context_uri"].endswith(played.stdout.splitlines()[-2].rsplit("/", 1)[1])


def test_the_playlist_command_with_no_device_says_so_in_one_line_and_shows_the_link(fake_spotify):
    sign_in()
    fake_spotify.devices = []
    result = run_playlist_cli("--mood", "sad", "--seed", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr  # made, but not played as asked
    link = result.stdout.splitlines()[-1].rsplit(" ", 1)[1]
    assert link.startswith("https://open.spotify.com/playlist/")
    (line,) = [line for line in result.stderr.splitlines() if NO_DEVICE_LINE in line]
    assert line.startswith("error: ") and line.endswith(f"and run this command again. The playlist: {link}")


# --- following, liking and skipping ----------------------------------------------------------------
def test_following_happy_sad_happy_plays_then_queues_fresh_tracks(fake_spotify):
    sign_in()
    dj = session()
    actions = []
    for t, mood in mood_stream(minutes=10, fps=5):
        actions += dj.observe(t, mood)
    actions += dj.wait(30)
    dj.close()
    assert [(a.action, a.mood, a.t) for a in actions] == [(PLAY, "happy", 20.0), (QUEUE, "sad", 220.0),
                                                          (QUEUE, "happy", 420.0)]
    played = actions[0].tracks
    queued = [uri for a in actions[1:] for uri in a.tracks]
    assert len(queued) == 6 and not set(queued) & set(played) and len(set(queued)) == 6
    assert fake_spotify.queue == queued
    assert actions[1].detail == "sad for 20 s: queued 3 tracks"
    line = json.dumps(actions[1].as_json())
    assert json.loads(line)["dj"] == {"t": 220.0, "action": "queue", "mood": "sad", "tracks": queued[:3],
                                      "detail": "sad for 20 s: queued 3 tracks"}


def test_lift_is_named_in_the_action(fake_spotify):
    sign_in()
    dj = session(strategy="lift", hold_s=5, gap_s=10)
    actions = []
    for t, mood in stream(("happy", 10), ("sad", 20), fps=5):
        actions += dj.observe(t, mood)
    actions += dj.wait(30)
    dj.close()
    assert actions[-1].action == QUEUE and actions[-1].detail.endswith(", lift")


def test_few_requests_while_following(fake_spotify):
    sign_in()
    figures = simulate(fake_spotify, minutes=10, fps=5)
    print(f"DJ requests while following: {figures['requests_per_minute']}/min")
    assert figures["requests_per_minute"] <= 6
    assert [a["action"] for a in figures["actions"]] == [PLAY, QUEUE, QUEUE]


def play_and_wait(dj: DJSession, mood: str = "happy") -> list:
    dj.play_now(0.0, mood)
    return dj.wait(30)


def test_like_saves_to_the_library_and_remembers_the_artists_for_the_mood(fake_spotify):
    sign_in()
    dj = session(following=False)
    (played,) = play_and_wait(dj)
    dj.like(5.0)
    (liked,) = dj.wait(10)
    dj.close()
    playing = played.tracks[0]
    state = dj.state  # what the panel shows
    assert not state.following and state.music_mood == "happy" and state.recent == (played, liked)
    assert state.now_playing.track.uri == playing and state.now_playing.mood == "happy"
    assert state.now_playing.device == "Tester's laptop" and state.now_playing.track.url.startswith("https://")
    assert liked.action == LIKE and liked.tracks == (playing,) and liked.mood == "happy"
    assert fake_spotify.library == [playing]
    artists = fake_spotify.track(playing)["artists"][0]["name"]
    assert taste().liked_artists("happy") == [artists] and taste().liked_artists("sad") == []
    assert stat.S_IMODE(os.stat(taste().path).st_mode) == 0o600


def test_a_skipped_track_never_comes_back_for_its_mood(fake_spotify):
    sign_in()
    first = make_playlist("sad", seed=11, play=True)
    dj = session(following=False)
    dj.dj.music_mood = "sad"
    dj.skip(1.0)
    (skipped,) = dj.wait(10)
    assert skipped.action == SKIP and skipped.tracks == (first.tracks[0].uri,)
    assert fake_spotify.now_playing() == first.tracks[1].uri  # it went to the next track
    playing = dj.state.now_playing.track  # and says so, not the skipped one
    assert playing is not None and playing.uri == first.tracks[1].uri
    # The same seed picks the same tracks, but not the skipped one: in new playlists and queues.
    again = make_playlist("sad", seed=11, new=True)
    assert first.tracks[0].uri not in [t.uri for t in again.tracks] and len(again.tracks) == 25
    for seed in range(5):
        tracks = make_playlist("sad", seed=seed, new=True, dry_run=True).tracks
        assert first.tracks[0].uri not in [t.uri for t in tracks]
    for t, mood in stream(("happy", 30), fps=2, start=2.0):
        dj.observe(t, mood)
    dj.following = True
    for t, mood in stream(("happy", 200), ("sad", 200), fps=2, start=32.0):
        dj.observe(t, mood)
    actions = dj.wait(30)
    dj.close()
    queued = [uri for a in actions if a.action == QUEUE and a.mood == "sad" for uri in a.tracks]
    assert queued and first.tracks[0].uri not in queued
    # Still fine for another mood: the skip said "not for sad".
    assert taste().skipped("happy") == []


def test_forget_taste_clears_the_memory_with_one_line(fake_spotify):
    from playlist.builder import Track

    taste().skip("sad", Track("x", "spotify:track:x", "X", ("A",)))
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "playlist", "--forget-taste"],
                            capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert result.returncode == 0 and result.stdout.count("\n") == 1 and "Forgot" in result.stdout
    assert not taste().path.exists() and taste().skipped("sad") == []


# --- faults: one clear line each, said once -----------------------------------------------------------
def test_no_device_while_following_is_said_once(fake_spotify):
    sign_in()
    fake_spotify.devices = []
    said = []
    dj = session(said=said, hold_s=5, retry_s=10)
    actions = []
    for t, mood in stream(("happy", 120), fps=5):
        actions += dj.observe(t, mood)
        if int(t * 5) % 5 == 0:
            actions += dj.wait(10)
    actions += dj.wait(10)
    dj.close()
    errors = [a for a in actions if a.action == ERROR]
    assert len(errors) == 1 and len(said) == 1 and NO_DEVICE_LINE in said[0] and "open.spotify.com" in said[0]
    assert fake_spotify.count("PUT", "/v1/me/player/play") == 0  # no device to send it to
    # Spotify is opened on the phone: the next try plays.
    fake_spotify.devices = [make_device("Phone", kind="Smartphone")]
    dj = session(said=said, hold_s=5)
    for t, mood in stream(("happy", 10), fps=5):
        dj.observe(t, mood)
    assert [a.action for a in dj.wait(20)] == [PLAY]
    dj.close()


def test_a_device_that_disappears_mid_session_is_one_line(fake_spotify):
    sign_in()
    said = []
    dj = session(said=said, hold_s=5, gap_s=10)
    play_and_wait(dj)
    fake_spotify.remove_device(fake_spotify.devices[0]["id"])
    for t, mood in stream(("sad", 30), fps=5, start=1.0):
        dj.observe(t, mood)
    (error,) = dj.wait(20)
    dj.close()
    assert error.action == ERROR and error.mood == "sad" and NO_DEVICE_LINE in error.detail and said == [error.detail]
    assert error.reason == "no_device" and error.as_json()["dj"]["reason"] == "no_device"


def only_action(frames, said: list, **settings):
    """The one action a following DJ takes over ``frames`` (5 s hold), its requests done."""
    dj = session(said=said, hold_s=5, **settings)
    for t, mood in frames:
        dj.observe(t, mood)
    (action,) = dj.wait(20)
    dj.close()
    return action


def test_premium_required_while_following_is_one_line(fake_spotify):
    sign_in()
    fake_spotify.premium = False
    said = []
    error = only_action(stream(("happy", 10), fps=5), said)
    assert error.action == ERROR and "PREMIUM_REQUIRED" in error.detail and len(said) == 1
    assert error.reason == "premium"


def test_a_rate_limit_is_honoured_with_no_retry_storm(fake_spotify):
    sign_in()
    dj = session(hold_s=5, gap_s=10)
    play_and_wait(dj)
    fake_spotify.rate_limit_next = 4  # longer than the client waits by itself
    for t, mood in stream(("sad", 30), fps=5, start=1.0):
        dj.observe(t, mood)
    (error,) = dj.wait(10)
    assert error.action == ERROR and "4 s" in error.detail and error.reason == "rate_limited"
    limited_at, before = time.monotonic(), fake_spotify.count()
    dj.like(40.0)
    (liked,) = dj.wait(15)
    dj.close()
    assert liked.action == LIKE and time.monotonic() - limited_at >= 3.5  # nothing went out before Retry-After
    assert fake_spotify.count() - before == 2  # then just the like's two requests


def test_an_expired_token_mid_session_is_refreshed_once(fake_spotify):
    sign_in()
    dj = session(hold_s=5, gap_s=10)
    play_and_wait(dj)
    fake_spotify.expire_tokens()
    refreshes = fake_spotify.count("POST", "/api/token")
    for t, mood in stream(("sad", 30), fps=5, start=1.0):
        dj.observe(t, mood)
    actions = dj.wait(20)
    dj.close()
    assert [a.action for a in actions] == [QUEUE] and fake_spotify.count("POST", "/api/token") == refreshes + 1


def test_network_down_is_said_retried_with_back_off_and_said_when_back(fake_spotify):
    sign_in()
    said = []
    dj = session(said=said, hold_s=5, gap_s=10)
    play_and_wait(dj)
    fake_spotify.offline = True
    for t, mood in stream(("sad", 30), fps=5, start=1.0):
        dj.observe(t, mood)
    deadline = time.monotonic() + 10
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(said) == 1 and "Cannot reach Spotify" in said[0] and "says when Spotify is back" in said[0]
    time.sleep(2.5)
    fake_spotify.offline = False
    actions = dj.wait(30)
    dj.close()
    assert [a.action for a in actions] == [QUEUE]
    assert said[1:] == ["Spotify is reachable again; the DJ carries on."]


def test_close_during_a_request_returns_within_a_second(fake_spotify):
    sign_in()
    dj = session(hold_s=5, gap_s=10)
    play_and_wait(dj)
    fake_spotify.offline = True  # the worker is now backing off and retrying
    for t, mood in stream(("sad", 30), fps=5, start=1.0):
        dj.observe(t, mood)
    time.sleep(0.5)
    started = time.monotonic()
    dj.close()
    assert time.monotonic() - started < 1.0


def test_an_older_sign_in_while_following_asks_for_a_sign_in_in_one_line(fake_spotify):
    auth = sign_in()
    token = auth.cache.get_cached_token()
    auth.cache.save_token_to_cache({**token, "scope": " ".join(PLAYLIST_SCOPES)})
    said = []
    error = only_action(stream(("happy", 10), fps=5), said)
    assert error.reason == "sign_in" and "permission to control playback" in error.detail and len(said) == 1
    assert len(fake_spotify.playlists) == 1 and fake_spotify.playing is None  # made, not played


def test_an_unwritable_memory_is_one_line_and_the_dj_goes_on(fake_spotify):
    sign_in()
    taste().path.mkdir(parents=True)  # a folder where the file should be: every write fails
    dj = session(following=False)
    play_and_wait(dj)
    dj.like(1.0)
    (error,) = dj.wait(10)
    assert error.action == ERROR and error.detail.startswith("The DJ could not save what you liked")
    dj.skip(2.0)
    assert [a.action for a in dj.wait(10)] == []  # the same line is not said twice...
    dj.dj.music_mood = "happy"
    taste().path.rmdir()
    dj.like(3.0)
    assert [a.action for a in dj.wait(10)] == [LIKE]  # ...and the DJ still works once the folder is fixed
    dj.close()


def test_a_playlist_the_window_started_itself_counts_as_the_djs(fake_spotify):
    sign_in()
    made = make_playlist("sad", seed=4, play=True)  # P in the window: its own worker, which may sign in
    dj = session(hold_s=5, gap_s=10)
    dj.played(0.0, "sad", made.tracks)
    for t, mood in stream(("sad", 30), ("happy", 30), ("sad", 30), fps=2, start=1.0):
        dj.observe(t, mood)
    actions = dj.wait(20)
    dj.like(95.0)  # the playlist's first track still plays: the like is for the mood it was picked for
    liked = dj.wait(10)
    dj.close()
    assert [(a.action, a.mood) for a in actions] == [(QUEUE, "happy"), (QUEUE, "sad")]  # not a second play
    queued = {uri for a in actions for uri in a.tracks}
    assert not queued & {t.uri for t in made.tracks}  # none already in this session's playlist
    assert [(a.action, a.mood) for a in liked] == [(LIKE, "sad")]
