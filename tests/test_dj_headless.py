"""`--headless --follow`: the DJ's actions as JSON lines from a real clip through the real pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT
from fake_spotify import consent_in_browser

from playlist.spotify import SpotifyAuth, load_config


def headless(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--headless", *args], capture_output=True,
                          text=True, timeout=180, env=os.environ.copy())


def test_headless_follow_prints_each_dj_action_and_counts_them(fake_spotify, face_video):
    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
    result = headless("--source", str(face_video), "--detector", "haar", "--follow", "--follow-hold", "1",
                      "--follow-gap", "1")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    actions = [line["dj"] for line in lines if "dj" in line]
    summary = lines[-1]
    # The astronaut smiles through the 2 s clip: the music starts once, about a second in (the clip's clock),
    # and the end of the file waited for the request to finish.
    assert [(a["action"], a["mood"]) for a in actions] == [("play", "happy")]
    assert 1.0 <= actions[0]["t"] <= 1.3 and len(actions[0]["tracks"]) == 25
    assert summary["summary"] and summary["dj_actions"] == {"play": 1}
    (playlist,) = fake_spotify.playlists.values()
    assert fake_spotify.playing["context_uri"] == f"spotify:playlist:{playlist['id']}"


def test_headless_follow_without_a_sign_in_is_one_line_and_analysis_goes_on(fake_spotify, face_video):
    result = headless("--source", str(face_video), "--detector", "haar", "--follow", "--follow-hold", "1")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert result.stderr.count("Not signed in to Spotify") == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum("faces" in line for line in lines[:-1]) == 30  # every frame analysed
    assert lines[-1]["dj_actions"] == {"error": 1}


def test_bad_follow_timings_are_refused_in_one_line(face_video):
    result = headless("--source", str(face_video), "--follow", "--follow-hold", "-3")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "--follow-hold" in result.stderr
