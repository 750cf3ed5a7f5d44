"""The DJ in the local API, against the fake Spotify over real HTTP: POST /playlist plays what it makes and the
DJ counts it as its own, GET /dj, POST /dj/follow, /dj/like and /dj/skip, each fault in one JSON line; and
`moodtunes serve --follow` on a real clip whose mood goes happy, sad, happy, through the real pipeline."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time

import cv2
import pytest
import requests
from clips import face_scene, write_clip
from conftest import FER2013_CSV, ROOT, needs
from fake_spotify import consent_in_browser, make_device
from test_api import Browser, assert_error, client, create, needs_chromium, rgb, start, wait_for, wait_for_mood
from test_dj_headless import fer2013_face

from emotion.classes import STYLES
from emotion.paths import config_dir
from playlist.dj import FollowSettings
from playlist.spotify import SpotifyAuth, load_config
from playlist.spotify.auth import PLAYLIST_SCOPES
from playlist.taste import TASTE_FILENAME, TasteMemory

NO_DEVICE_LINE = "open Spotify on any device (phone, desktop, web player) and send POST /playlist again"
FAST = FollowSettings(hold_s=1, gap_s=1)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr):
    path = tmp_path_factory.mktemp("api-dj") / "me.jpg"
    cv2.imwrite(str(path), face_scene(astronaut_bgr))
    return path


def sign_in() -> None:
    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)


def taste() -> TasteMemory:
    return TasteMemory(config_dir() / TASTE_FILENAME)


def one_line(response: requests.Response, status: int, text: str) -> dict:
    """A refusal: ``status``, JSON, one line with ``text``; its body."""
    assert_error(response, status, text)
    body = response.json()
    assert "\n" not in body["error"]
    return body


def test_post_playlist_plays_and_the_dj_takes_it_from_there(photo, fake_spotify):
    sign_in()
    with client(create(photo, follow_settings=FAST)) as api:
        wait_for_mood(api)
        made = api.post("/playlist", json={"mood": "current"}).json()
        (playlist,) = fake_spotify.playlists.values()
        assert made["device"] == "Tester's laptop" and made["track_count"] == 25
        assert fake_spotify.playing["context_uri"] == f"spotify:playlist:{playlist['id']}"
        first = fake_spotify.track(playlist["uris"][0])
        dj = wait_for(api, "/dj", lambda body: body["playing"])
        assert dj["playing"] == {"title": first["name"], "artist": first["artists"][0]["name"], "uri": first["uri"],
                                 "link": first["external_urls"]["spotify"], "mood": "happy"}
        assert dj["device"] == "Tester's laptop" and dj["music_mood"] == "happy" and not dj["following"]
        assert dj["actions"] == [] and dj["play"] and (dj["hold_s"], dj["gap_s"]) == (1, 1)

        # Following from now on: the happy mood holds, but the music is already on it; no second playlist.
        assert api.post("/dj/follow", json={"on": True}).json()["following"] is True
        held = wait_for(api, "/dj", lambda body: body["holding"] and body["holding"]["held_s"] >= 2.5)
        assert held["holding"]["mood"] == "happy" and held["actions"] == [] and len(fake_spotify.playlists) == 1

        liked = api.post("/dj/like")
        assert liked.status_code == 200, liked.text
        assert liked.json() | {"at": None, "t": None} == {
            "t": None, "at": None, "action": "like", "mood": "happy", "detail": f"liked {first['artists'][0]['name']} "
            f"- {first['name']} for happy", "tracks": [f"{first['artists'][0]['name']} - {first['name']}"],
            "uris": [first["uri"]], "device": "Tester's laptop", "reason": None}
        assert fake_spotify.library == [first["uri"]]
        assert taste().liked_artists("happy") == [first["artists"][0]["name"]]

        skipped = api.post("/dj/skip").json()
        assert skipped["action"] == "skip" and skipped["uris"] == [first["uri"]] and skipped["mood"] == "happy"
        assert fake_spotify.now_playing() == playlist["uris"][1]  # the next track plays
        assert [t.uri for t in taste().skipped("happy")] == [first["uri"]] and taste().liked("happy") == []

        dj = api.get("/dj").json()
        assert [a["action"] for a in dj["actions"]] == ["like", "skip"]
        assert all(a["t"] == pytest.approx(dj["actions"][0]["t"], abs=5) for a in dj["actions"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", dj["actions"][0]["at"])
        assert api.post("/dj/follow", json={"on": False}).json()["following"] is False
        assert_error(api.post("/dj/follow", json={"on": "maybe"}), 400, "on")


def test_a_playlist_that_cannot_start_is_one_line_with_the_playlist_and_analysis_goes_on(photo, fake_spotify):
    sign_in()
    with client(create(photo)) as api:
        wait_for_mood(api)
        fake_spotify.devices = []
        body = one_line(api.post("/playlist", json={"mood": "current"}), 409, NO_DEVICE_LINE)
        (playlist,) = fake_spotify.playlists.values()
        link = f"https://open.spotify.com/playlist/{playlist['id']}"
        assert body["error"].endswith(f"The playlist: {link}") and body["playlist"]["url"] == link
        assert body["playlist"]["track_count"] == 25 and body["playlist"]["device"] is None
        assert fake_spotify.playing is None and api.get("/dj").json()["playing"] is None  # not the DJ's music
        assert api.get("/mood").json()["mood"]["label"] == "happy"  # the analysis goes on

        fake_spotify.devices = [make_device("Tester's laptop", active=True)]  # Spotify opened again
        fake_spotify.premium = False
        body = one_line(api.post("/playlist", json={"mood": "current"}), 403, "Premium")
        assert body["playlist"]["url"] == link and body["playlist"]["reused"]  # the same playlist, no duplicate
        assert api.get("/mood").status_code == 200

        fake_spotify.premium = True
        token_path = load_config().token_path  # a sign-in from before the DJ's permissions
        token = json.loads(token_path.read_text())
        token["scope"] = " ".join(PLAYLIST_SCOPES)
        token_path.write_text(json.dumps(token))
        body = one_line(api.post("/playlist", json={"mood": "sad"}), 409, "permission to control playback")
        assert "run `moodtunes playlist --mood happy` once to sign in once more" in body["error"]
        assert body["playlist"]["mood"] == "sad" and fake_spotify.playing is None


def test_play_is_the_servers_choice_unless_the_request_says(photo, fake_spotify):
    sign_in()
    with client(create(photo, play=False)) as api:  # serve --no-play
        wait_for_mood(api)
        made = api.post("/playlist", json={"mood": "current"}).json()
        assert made["device"] is None and made["track_count"] == 25 and fake_spotify.playing is None
        assert api.get("/dj").json()["play"] is False
        played = api.post("/playlist", json={"mood": "sad", "play": True}).json()
        assert played["device"] == "Tester's laptop" and fake_spotify.playing is not None
        dry = api.post("/playlist", json={"mood": "angry", "dry_run": True, "play": True}).json()
        assert dry["device"] is None and len(fake_spotify.playlists) == 2  # a dry run makes and plays nothing


def test_the_dj_following_with_no_spotify_open_is_one_line_and_analysis_goes_on(photo, fake_spotify, capsys):
    sign_in()
    fake_spotify.devices = []
    with client(create(photo, follow=True, follow_settings=FAST)) as api:
        dj = wait_for(api, "/dj", lambda body: body["actions"])
        (error,) = dj["actions"]
        assert error["action"] == "error" and error["reason"] == "no_device" and error["mood"] == "happy"
        assert "open Spotify on any device" in error["detail"] and "\n" not in error["detail"]
        assert dj["following"] and dj["playing"] is None and dj["music_mood"] is None  # it asks again later
        mood = api.get("/mood").json()
        assert mood["state"] == "running" and mood["mood"]["label"] == "happy"
        # Like and skip with nothing of moodtunes' playing: one line, with what to do.
        one_line(api.post("/dj/like"), 409, "Nothing plays on your Spotify to like")
    said = [line for line in capsys.readouterr().err.splitlines() if "open Spotify on any device" in line]
    assert len(said) == 1 and said[0].startswith("warning: ")


def test_spotify_out_of_reach_never_holds_up_the_analysis(photo, fake_spotify, capsys):
    sign_in()
    fake_spotify.offline = True
    with client(create(photo, follow=True, follow_settings=FAST)) as api:
        first = wait_for_mood(api)["t"]
        # The DJ's worker waits for Spotify, retrying; the frames go on meanwhile (photos come one a second).
        later = wait_for(api, "/mood", lambda body: body["t"] >= first + 4)
        assert later["t"] >= first + 4 and later["mood"]["label"] == "happy"
        assert api.get("/dj").json()["actions"] == []
        fake_spotify.offline = False
        dj = wait_for(api, "/dj", lambda body: body["actions"], timeout=30)
        assert [(a["action"], a["mood"]) for a in dj["actions"]] == [("play", "happy")]
    lines = capsys.readouterr().err.splitlines()
    assert sum("keeps trying" in line for line in lines) == 1 and sum("reachable again" in line for line in lines) == 1


def test_like_and_skip_without_premium_are_one_line(photo, fake_spotify):
    sign_in()
    with client(create(photo)) as api:
        wait_for_mood(api)
        assert api.post("/playlist", json={"mood": "current"}).json()["device"]
        fake_spotify.premium = False
        one_line(api.post("/dj/skip"), 403, "Premium")
        assert api.get("/dj").json()["actions"][-1]["reason"] == "premium"


def test_docs_show_the_dj():
    with client(create(None)) as api:
        schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert paths["/dj"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DJStatus")
    assert {"403", "409", "202"} <= set(paths["/dj/skip"]["post"]["responses"])
    assert {"403", "409"} <= set(paths["/playlist"]["post"]["responses"])


@needs_chromium
def test_the_overlay_page_shows_now_playing_and_marks_the_djs_changes(photo, tmp_path, fake_spotify):
    sign_in()
    with start(photo, follow=True, follow_settings=FAST) as server, Browser(tmp_path / "profile") as browser:
        dj = wait_for(server, "/dj", lambda body: body["playing"])
        browser.call("Page.navigate", url=server.base + "/")
        shown = browser.wait_for("""(() => { const dj = document.getElementById('dj');
            const mark = document.querySelector('#strip .mark.music');
            if (dj.hidden || !mark) return null;
            const strip = document.getElementById('strip').getBoundingClientRect();
            return {track: dj.querySelector('.track').textContent, about: dj.querySelector('.about').textContent,
                    actions: [...dj.querySelectorAll('.actions li')].map((li) => li.textContent),
                    mark: (mark.getBoundingClientRect().left - strip.left) / strip.width,
                    colour: mark.style.background}; })()""", timeout=20)
    playing = dj["playing"]
    assert shown["track"] == f"♪ {playing['title']} – {playing['artist']}"
    assert shown["about"] == "picked for happy · following on · on Tester's laptop"
    (action,) = shown["actions"]
    assert re.fullmatch(r"\d\d:\d\d happy: playing moodtunes · Happy · .+ on Tester's laptop", action)
    assert 0.9 < shown["mark"] <= 1.0 and shown["colour"] == rgb(STYLES["happy"].colour)


# --- `moodtunes serve --follow` on a real clip ----------------------------------------------------------
class Serve:
    """`main.py serve` in a subprocess, on a port of its own."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0", *args],
                                        stderr=subprocess.PIPE, text=True)
        banner = self.process.stderr.readline()
        self.base = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, timeout=10)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.base + path, timeout=30, **kwargs)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=30)
        finally:
            self.process.kill()
        return status, self.process.stderr.read()


@needs(FER2013_CSV)
def test_serve_follow_on_a_clip_that_goes_happy_sad_happy(fake_spotify, tmp_path, astronaut_bgr):
    sign_in()
    fps, sad = 5, fer2013_face(4, 21)  # a sad face the shipped model reads as sad
    parts = [(astronaut_bgr, 5), (sad, 6), (astronaut_bgr, 6)]  # seconds each; --loop plays it again
    frames = [face_scene(face, dx=60 + 4 * (i % 5)) for face, seconds in parts for i in range(seconds * fps)]
    clip = write_clip(tmp_path / "happy-sad-happy.avi", frames, fps=fps)
    server = Serve("--source", str(clip), "--loop", "--detector", "haar", "--follow", "--follow-hold", "2",
                   "--follow-gap", "3")
    try:
        deadline = time.monotonic() + 60
        while True:  # the banner comes once the port is bound, a moment before uvicorn accepts on it
            with contextlib.suppress(requests.ConnectionError):
                if server.get("/dj").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        dj = wait_for(server, "/dj", lambda body: len(body["actions"]) >= 3, timeout=40)
        actions = dj["actions"]
        assert [(a["action"], a["mood"]) for a in actions] == [("play", "happy"), ("queue", "sad"),
                                                               ("queue", "happy")]
        # On the clip's clock, as --headless decides: a mood that held 2 s, at least 3 s after the music last
        # changed; the smoothed mood turns about 1 s after the face.
        play, to_sad, to_happy = (a["t"] for a in actions)
        assert play == 2.0 and to_sad == pytest.approx(8.0, abs=0.3) and to_happy == pytest.approx(14.0, abs=0.3)
        queued = actions[1]["uris"] + actions[2]["uris"]
        (playlist,) = fake_spotify.playlists.values()
        assert len(set(queued)) == 6 and not set(queued) & set(playlist["uris"]) and fake_spotify.queue == queued
        assert actions[1]["detail"] == "sad for 2 s: queued 3 tracks" and dj["following"]
        first = playlist["uris"][0]
        assert dj["playing"]["uri"] == first and dj["playing"]["mood"] == "happy"

        # Following off before the clip's second sad part (from 22 s): the music stays on happy.
        assert server.post("/dj/follow", json={"on": False}).json()["following"] is False
        liked = server.post("/dj/like").json()
        assert (liked["action"], liked["mood"], liked["uris"]) == ("like", "happy", [first])
        assert fake_spotify.library == [first] and [t.uri for t in taste().liked("happy")] == [first]
        skipped = server.post("/dj/skip").json()
        assert (skipped["action"], skipped["mood"], skipped["uris"]) == ("skip", "happy", [first])
        assert fake_spotify.now_playing() == queued[0]  # the queue goes on
        # Remembered: skipped is the last word on it for happy (and only for happy).
        assert [t.uri for t in taste().skipped("happy")] == [first] and taste().liked("happy") == []
        assert taste().skipped("sad") == []

        mood = wait_for(server, "/mood", lambda body: body["t"] >= 25.5 and (body["mood"] or {}).get("label") == "sad",
                        timeout=30)
        assert mood["mood"]["label"] == "sad" and mood["t"] < 28
        dj = server.get("/dj").json()
        assert [a["action"] for a in dj["actions"]] == ["play", "queue", "queue", "like", "skip"]
        assert dj["holding"]["mood"] == "sad" and dj["holding"]["held_s"] >= 2 and dj["music_mood"] == "happy"

        # On again: sad has held long enough, and the gap is long past: the DJ follows at once.
        assert server.post("/dj/follow", json={"on": True}).json()["following"] is True
        dj = wait_for(server, "/dj", lambda body: len(body["actions"]) >= 6, timeout=10)
        last = dj["actions"][-1]
        assert (last["action"], last["mood"]) == ("queue", "sad") and last["t"] >= mood["t"]
        assert not set(last["uris"]) & {*queued, *playlist["uris"]}

        # Faults: one JSON line each, and the analysis goes on.
        fake_spotify.devices = []
        body = one_line(server.post("/playlist", json={"mood": "current"}), 409, NO_DEVICE_LINE)
        assert body["playlist"]["url"].startswith("https://open.spotify.com/playlist/")
        fake_spotify.devices = [make_device("Tester's laptop", active=True)]
        fake_spotify.premium = False
        one_line(server.post("/playlist", json={"mood": "current"}), 403, "Premium")
        assert server.get("/mood").json()["state"] == "running"
    finally:
        status, errors = server.stop()
    assert status == 143 and "Traceback" not in errors, errors
