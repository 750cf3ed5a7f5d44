"""The DJ in the window, as a person uses it: offscreen, on a real clip through the real pipeline, against the
fake Spotify over real HTTP. P plays; F follows the mood; L likes, N skips; the panel and the timeline show
what the music did; Q quits at once even while Spotify is slow."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace

import pytest
from clips import write_mood_clip
from conftest import FER2013_CSV, app_settings, needs
from fake_spotify import consent_in_browser
from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QToolBar
from test_dj_headless import fer2013_face
from test_gui import open_window as open_gui_window
from test_gui import wait_for_mood

from emotion.cli import settings_from_args
from emotion.paths import config_dir
from gui.timeline import MUSIC_COLOUR
from gui.window import MainWindow
from playlist.spotify import SpotifyAuth, SpotifyClient, load_config
from playlist.taste import TASTE_FILENAME, TasteMemory

NO_DEVICE_LINE = "open Spotify on any device (phone, desktop, web player) and press P"


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def signed_in(fake_spotify):
    """A sign-in cached in the config folder, as after a first P."""
    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
    return fake_spotify


@pytest.fixture(scope="module")
def happy_sad_happy(tmp_path_factory, astronaut_bgr):
    """13 s at 5 fps: the smiling astronaut 3 s, a sad FER2013 face 5 s, the astronaut again 5 s."""
    if not FER2013_CSV.exists():
        pytest.skip(f"{FER2013_CSV} not available (shared data)")
    sad = fer2013_face(4, 21)  # a sad face the shipped model reads as sad
    return write_mood_clip(tmp_path_factory.mktemp("dj") / "happy-sad-happy.avi",
                           [(astronaut_bgr, 3), (sad, 5), (astronaut_bgr, 5)], fps=5)


def open_window(qtbot, store, source, *, loop=False, **app):
    """The window on ``source`` (Haar), signing in through the fake's consent page when asked."""
    return open_gui_window(qtbot, store, source, open_url=browser, loop=loop, app=app)


def browser(url: str) -> None:
    if "/authorize" in url:
        consent_in_browser(url)


def recent_lines(window) -> list[str]:
    return window.dj.section.recent.text().splitlines() if window.dj.section.recent.isVisible() else []


def music_marks(image: QImage, strip: QRect) -> list[float]:
    """The x of each green mark (its pixels' middle) along the strip's middle row."""
    y = strip.center().y()
    green = [x for x in range(strip.left(), strip.right() + 1)
             if all(abs(a - b) <= 40 for a, b in zip(image.pixelColor(x, y).getRgb()[:3],
                                                      MUSIC_COLOUR.getRgb()[:3], strict=True))]
    runs: list[list[int]] = []
    for x in green:
        if runs and x - runs[-1][-1] <= 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return [sum(run) / len(run) for run in runs]


@needs(FER2013_CSV)
def test_following_the_clip_plays_then_queues_and_shows_it(qtbot, store, signed_in, happy_sad_happy, monkeypatch):
    fake = signed_in
    gui_thread_http = []
    import requests.adapters

    send = requests.adapters.HTTPAdapter.send

    def recording_send(adapter, request, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            gui_thread_http.append(request.url)
        return send(adapter, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", recording_send)
    window = open_window(qtbot, store, happy_sad_happy, follow=True, follow_hold_s=1.5, follow_gap_s=3.0,
                         timeline_span_s=30.0)
    assert window.dj.follow_action.isChecked() and "following your mood" in window.dj.section.following.text()
    shown = []  # (timeline clock, the DJ's stream time) of each frame shown
    window.engine.frame_shown.connect(lambda frame: shown.append((window.timeline.clock(), window.dj._t)))
    qtbot.waitUntil(lambda: len(recent_lines(window)) == 3, timeout=60000)
    play, to_sad, to_happy = recent_lines(window)
    assert re.fullmatch(r"\d\d:\d\d happy: playing moodtunes · Happy · .+ on Tester's laptop", play), play
    assert re.fullmatch(r"\d\d:\d\d sad for 2 s: queued 3 tracks", to_sad), to_sad
    assert re.fullmatch(r"\d\d:\d\d happy for 2 s: queued 3 tracks", to_happy), to_happy
    (playlist,) = fake.playlists.values()
    assert fake.playing["context_uri"] == f"spotify:playlist:{playlist['id']}" and len(fake.queue) == 6
    assert not set(fake.queue) & set(fake.playing["uris"])  # queued tracks are new to the session

    # Now playing: the playlist's first track, with its artist and link, the mood it was picked for, the device.
    playing = fake.track(fake.now_playing())
    text = window.dj.section.now_playing.text()
    assert playing["name"] in text and playing["artists"][0]["name"] in text
    assert f'href="{playing["external_urls"]["spotify"]}"' in text
    assert "for <b>happy</b>" in text and "Tester's laptop" in text
    assert not window.dj.section.problem.isVisible()

    # The timeline: a green mark where each change was decided, on the clip's clock, and no white (P) mark.
    qtbot.waitUntil(lambda: window.engine.ended, timeout=20000)
    window.timeline.strip.repaint()
    image, now = window.timeline.strip.grab().toImage(), window.timeline.clock()
    strip = window.timeline.strip.strip_rect().toRect()
    per_second = strip.width() / 30.0
    actions = [a for a in window.dj.session.state.recent]
    expected = []
    for action in actions:
        clock_then = next(clock for clock, t in shown if t >= action.t - 1e-6)
        expected.append(strip.right() - (now - clock_then) * per_second)
    marks = music_marks(image, strip)
    assert len(marks) == 3, marks
    for x, want in zip(marks, expected, strict=True):
        assert abs(x - want) <= max(6, 0.4 * per_second), f"music marks at {marks}, expected {expected}"
    y = strip.center().y()
    assert not [x for x in range(strip.left(), strip.right()) if min(image.pixelColor(x, y).getRgb()[:3]) > 230]
    assert gui_thread_http == []  # every Spotify request went out on a worker thread


@needs(FER2013_CSV)
def test_like_and_skip_keys_and_a_skipped_track_never_comes_back(qtbot, store, signed_in, happy_sad_happy):
    fake = signed_in
    window = open_window(qtbot, store, happy_sad_happy, follow=True, follow_hold_s=1.5, follow_gap_s=3.0)
    qtbot.waitUntil(lambda: len(recent_lines(window)) >= 1, timeout=60000)
    first = fake.now_playing()  # the first track of the happy playlist the DJ started
    qtbot.keyClick(window, Qt.Key.Key_L)
    qtbot.waitUntil(lambda: fake.library == [first], timeout=10000)
    qtbot.waitUntil(lambda: any(" liked " in line for line in recent_lines(window)), timeout=5000)
    taste = TasteMemory(config_dir() / TASTE_FILENAME)
    assert taste.liked_artists("happy") == [fake.track(first)["artists"][0]["name"]]
    qtbot.keyClick(window, Qt.Key.Key_N)  # on second thoughts: not for happy
    qtbot.waitUntil(lambda: any(" skipped " in line for line in recent_lines(window)), timeout=10000)
    assert fake.now_playing() != first
    assert [t.uri for t in taste.skipped("happy")] == [first] and taste.liked("happy") == []
    assert window.dj.session.state.recent[-1].mood == "happy"

    # The clip ends on a smile; P for happy (within minutes of the DJ's happy playlist): the skipped track
    # neither plays nor is in what plays.
    qtbot.waitUntil(lambda: window.engine.ended and any(a.action == "queue" and a.mood == "happy"
                                                        for a in window.dj.session.state.recent), timeout=40000)
    assert window.engine.latest.analysis.mood.label == "happy"
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "Playing on" in window.playlist.section.label.text(), timeout=20000)
    assert fake.now_playing() != first and first not in fake.playing["uris"]
    queued_for_happy = [uri for a in window.dj.session.state.recent if a.mood == "happy" and a.action == "queue"
                        for uri in a.tracks]
    assert queued_for_happy and first not in queued_for_happy


def test_p_plays_and_without_a_device_says_one_line_with_the_link(qtbot, store, signed_in, face_video):
    fake = signed_in
    window = open_window(qtbot, store, face_video, loop=True)
    assert window.playlist.play_action.isChecked()  # "Play when made" is on unless chosen otherwise
    wait_for_mood(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "Playing on Tester's laptop." in window.playlist.section.label.text(), timeout=20000)
    (playlist,) = fake.playlists.values()
    assert fake.playing["context_uri"] == f"spotify:playlist:{playlist['id']}"
    # The DJ counts P's playlist as its own: the panel shows its first track, picked for happy.
    qtbot.waitUntil(lambda: "for <b>happy</b>" in window.dj.section.now_playing.text(), timeout=5000)

    fake.devices = []
    fake.playing = None
    window.playlist.strategy_actions["lift"].trigger()  # another playlist, not the one just made
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: NO_DEVICE_LINE in window.playlist.section.label.text(), timeout=20000)
    text = window.playlist.section.label.text()
    lift = next(p for p in fake.playlists.values() if p["id"] != playlist["id"])
    assert f"https://open.spotify.com/playlist/{lift['id']}" in text and "open in Spotify" in text
    assert text.count(NO_DEVICE_LINE) == 1 and fake.playing is None


def test_play_when_made_is_a_remembered_menu_choice_and_no_play_turns_it_off(qtbot, store, signed_in, face_video):
    from main import build_parser

    fake = signed_in
    window = open_window(qtbot, store, face_video, loop=True)
    window.playlist.play_action.trigger()  # Playlist → Play when made: off
    wait_for_mood(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "open in Spotify" in window.playlist.section.label.text(), timeout=20000)
    assert fake.playing is None and "Playing" not in window.playlist.section.label.text()
    window.close()
    again = MainWindow(app_settings(source=str(face_video), detector="haar"), store)
    qtbot.addWidget(again)
    assert not again.playlist.play_action.isChecked()  # remembered
    again.playlist.play_action.trigger()
    again.close()
    told = settings_from_args(build_parser().parse_args(["--no-play", "--follow", "--follow-hold", "5"]))
    assert told.play_when_made is False and told.follow and told.follow_hold_s == 5 and told.follow_gap_s is None
    no_play = MainWindow(replace(app_settings(source=str(face_video), detector="haar"), play_when_made=False), store)
    qtbot.addWidget(no_play)
    assert not no_play.playlist.play_action.isChecked()  # --no-play wins for this run...
    no_play.close()
    assert QSettings(store.fileName(), QSettings.Format.IniFormat).value("playlist/play_when_made") in (True, "true")


def test_the_follow_key_menu_and_toolbar_toggle_the_dj(qtbot, store, face_video):
    window = open_window(qtbot, store, face_video, loop=True)
    toolbar = window.findChild(QToolBar, "main-toolbar")
    dj_actions = [window.action(name) for name in ("follow", "like", "skip")]
    assert all(action in toolbar.actions() for action in dj_actions) and dj_actions[0].isCheckable()
    assert window.dj.session is None  # nothing of the DJ loads until it is used
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.dj.follow_action.isChecked() and window.dj.session.following
    assert "following your mood" in window.dj.section.following.text()
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert not window.dj.session.following and "not following" in window.dj.section.following.text()


def test_following_without_a_sign_in_is_one_line_and_a_sign_in_button(qtbot, store, fake_spotify, face_video):
    window = open_window(qtbot, store, face_video, loop=True, follow=True, follow_hold_s=0.5)
    said = []
    window.dj._said.connect(said.append)
    problem = window.dj.section.problem
    qtbot.waitUntil(lambda: problem.isVisible() and "Not signed in" in problem.text(), timeout=20000)
    qtbot.waitUntil(lambda: window.dj.section.sign_in_button.isVisible(), timeout=5000)
    frames = window.engine.latest.analysis.index
    qtbot.wait(2000)  # frames keep coming (the DJ asks again after 30 s, not per frame): said once
    assert len(said) == 1 and "P" in said[0] and window.engine.latest.analysis.index > frames + 10
    qtbot.mouseClick(window.dj.section.sign_in_button, Qt.MouseButton.LeftButton)  # P's sign-in, then it plays
    qtbot.waitUntil(lambda: "Playing on" in window.playlist.section.label.text(), timeout=20000)
    assert fake_spotify.playing is not None


def test_q_during_a_slow_request_quits_within_a_second(qtbot, store, signed_in, face_video, monkeypatch):
    in_flight, release = threading.Event(), threading.Event()
    devices = SpotifyClient.devices

    def slow_devices(client):  # Spotify taking its time to list the devices
        in_flight.set()
        release.wait(20)
        return devices(client)

    monkeypatch.setattr(SpotifyClient, "devices", slow_devices)
    window = open_window(qtbot, store, face_video, loop=True, follow=True, follow_hold_s=0.5)
    try:
        qtbot.waitUntil(in_flight.is_set, timeout=30000)
        started = time.monotonic()
        qtbot.keyClick(window, Qt.Key.Key_Q)
        assert time.monotonic() - started < 1.0 and not window.isVisible()
    finally:
        release.set()


def test_the_music_mark_differs_from_the_p_mark(qtbot, store, face_video):
    window = open_window(qtbot, store, face_video, loop=True, timeline_span_s=20.0)
    wait_for_mood(qtbot, window)
    window.dj.music_changed.emit(0.0, "happy")
    window.engine.pause_action.setChecked(True)
    window.timeline.strip.repaint()
    image = window.timeline.strip.grab().toImage()
    strip = window.timeline.strip.strip_rect().toRect()
    (x,) = music_marks(image, strip)
    assert abs(x - strip.right()) <= 6
    head = image.pixelColor(round(x), 3)
    assert QColor(head).green() > 150 and QColor(head).red() < 120  # a green head, not a white one


def test_an_older_sign_in_leads_to_ps_sign_in_and_the_music_starts(qtbot, store, signed_in, face_video):
    from playlist.spotify.auth import PLAYLIST_SCOPES

    fake = signed_in
    auth = SpotifyAuth(load_config())
    token = auth.cache.get_cached_token()
    auth.cache.save_token_to_cache({**token, "scope": " ".join(PLAYLIST_SCOPES)})  # a sign-in from before the DJ
    window = open_window(qtbot, store, face_video, loop=True, follow=True, follow_hold_s=0.5)
    problem, button = window.dj.section.problem, window.dj.section.sign_in_button
    qtbot.waitUntil(lambda: "permission to control playback" in problem.text() and button.isVisible(), timeout=20000)
    (made,) = fake.playlists.values()
    assert f"https://open.spotify.com/playlist/{made['id']}" in problem.text() and fake.playing is None
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # P's sign-in: the browser opens, the user allows it
    qtbot.waitUntil(lambda: "Playing on" in window.playlist.section.label.text(), timeout=20000)
    assert fake.playing["context_uri"] == f"spotify:playlist:{made['id']}"  # the DJ's playlist, not a second one
    assert len(fake.playlists) == 1
    qtbot.waitUntil(lambda: not problem.isVisible() and not button.isVisible(), timeout=5000)
