"""`--headless --follow`: the DJ's actions as JSON lines from a real clip through the real pipeline."""

from __future__ import annotations

import csv
import json
import lzma
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from clips import face_scene, write_clip
from conftest import FER2013_CSV, ROOT, needs
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


def fer2013_face(label: int, nth: int) -> np.ndarray:
    """The ``nth`` (1-based) FER2013 face with ``label`` (3 happy, 4 sad), enlarged as a webcam would show it."""
    with lzma.open(FER2013_CSV, "rt") as f:
        rows = (row for row in csv.DictReader(f) if row["emotion"] == str(label))
        row = next(row for i, row in enumerate(rows, 1) if i == nth)
    gray = np.array(row["pixels"].split(), np.uint8).reshape(48, 48)
    return cv2.cvtColor(cv2.resize(gray, (240, 240), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)


@needs(FER2013_CSV)
def test_headless_follow_on_a_clip_that_goes_happy_sad_happy(fake_spotify, tmp_path, astronaut_bgr):
    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
    fps, sad = 5, fer2013_face(4, 21)  # a sad face the shipped model reads as sad
    parts = [(astronaut_bgr, 6), (sad, 8), (astronaut_bgr, 8)]  # seconds each
    frames = [face_scene(face, dx=60 + 4 * (i % 5)) for face, seconds in parts for i in range(seconds * fps)]
    clip = write_clip(tmp_path / "happy-sad-happy.avi", frames, fps=fps)
    result = headless("--source", str(clip), "--detector", "haar", "--follow", "--follow-hold", "2",
                      "--follow-gap", "4")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    actions = [line["dj"] for line in lines if "dj" in line]
    assert [(a["action"], a["mood"]) for a in actions] == [("play", "happy"), ("queue", "sad"), ("queue", "happy")]
    play, to_sad, to_happy = (a["t"] for a in actions)
    # Each on the clip's clock: a mood that held 2 s, at least 4 s after the music last changed.
    # The file's clock makes them exact: 2 s after the start; the smoothed mood turns about 1 s after the face.
    assert play == 2.0 and to_sad == pytest.approx(9.0, abs=0.2) and to_happy == pytest.approx(17.0, abs=0.2)
    queued = actions[1]["tracks"] + actions[2]["tracks"]
    assert len(set(queued)) == 6 and not set(queued) & set(actions[0]["tracks"]) and fake_spotify.queue == queued
    assert lines[-1]["dj_actions"] == {"play": 1, "queue": 2}
