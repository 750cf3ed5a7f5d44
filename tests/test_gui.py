"""The window, offscreen: frames arrive, P makes a playlist, Q quits, slow inference never freezes it."""

from __future__ import annotations

import threading
import time

import cv2
import pytest
from conftest import SHIPPED_CHECKPOINT
from fake_spotify import consent_in_browser
from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer

from emotion.errors import MoodtunesError
from emotion.recognizer import EmotionRecognizer
from gui.window import MainWindow, Options


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "moodtunes.ini"), QSettings.Format.IniFormat)


def open_window(qtbot, settings, source, open_url=lambda url: None, make_recognizer=None, make_playlist=None,
                **options):
    options = {"loop": True, "detector": "haar", **options}
    window = MainWindow(Options(source=str(source), **options), settings, make_playlist=make_playlist,
                        open_url=open_url, make_recognizer=make_recognizer)
    qtbot.addWidget(window)
    with qtbot.waitActive(window):  # shortcuts act in the active window, as for a user's keystrokes
        window.show()
        window.activateWindow()
    window.start()
    return window


def wait_for_mood(qtbot, window):
    qtbot.waitUntil(lambda: window.latest is not None and window.latest.analysis.mood is not None, timeout=20000)


def test_frames_reach_the_view_and_the_panel(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    wait_for_mood(qtbot, window)
    assert window.view.frame is not None and window.view.message == ""
    assert window.view.frame.image.width() == 640
    assert window.panel.mood_label.text() == "Happy"
    assert window.panel.bars["happy"].value() > 50
    assert "fps" in window.status.text() and "Haar cascade" in window.status.text()


def test_p_makes_a_playlist_and_shows_its_link(qtbot, settings, face_video, fake_spotify):
    opened = []

    def browser(url):
        consent_in_browser(url) if "/authorize" in url else opened.append(url)

    window = open_window(qtbot, settings, face_video, open_url=browser)
    wait_for_mood(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "open in Spotify" in window.panel.playlist_label.text(), timeout=20000)
    (playlist,) = fake_spotify.playlists.values()
    text = window.panel.playlist_label.text()
    assert playlist["name"] in text and "25 tracks" in text
    assert f"https://open.spotify.com/playlist/{playlist['id']}" in text and opened
    assert window.panel.playlist_label.openExternalLinks()


def test_p_without_credentials_shows_the_setup_steps(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    wait_for_mood(qtbot, window)
    window.playlist_action.trigger()
    qtbot.waitUntil(lambda: "developer.spotify.com" in window.panel.playlist_label.text(), timeout=10000)
    assert "open.spotify.com/search/" in window.panel.playlist_label.text()


def test_p_before_any_mood_asks_to_look_at_the_camera(qtbot, settings, face_video):
    window = MainWindow(Options(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(window)
    window.make_playlist()
    assert "No mood yet" in window.panel.playlist_label.text()


def test_q_closes_and_releases_the_source(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    qtbot.waitUntil(lambda: window.latest is not None, timeout=20000)
    source = window.worker._live._source
    started = time.monotonic()
    qtbot.keyClick(window, Qt.Key.Key_Q)
    assert time.monotonic() - started < 1.0
    assert not window.isVisible()
    assert not window.worker.running
    assert not source._thread.is_alive()  # the decoding thread released its capture and ended


def test_escape_also_quits(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()


class SlowRecognizer(EmotionRecognizer):
    """The real recogniser, made to take 400 ms per frame (a very slow machine)."""

    def logits(self, face_crops):
        time.sleep(0.4)
        return super().logits(face_crops)


def test_slow_inference_does_not_block_the_event_loop(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video,
                         make_recognizer=lambda: SlowRecognizer(SHIPPED_CHECKPOINT, device="cpu", detector="haar"))
    qtbot.waitUntil(lambda: window.latest is not None, timeout=20000)
    gaps, clock = [], QElapsedTimer()
    clock.start()

    def tick():
        gaps.append(clock.restart())

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    frames_before = window.latest.analysis.index
    qtbot.wait(2000)
    timer.stop()
    assert window.latest.analysis.index > frames_before  # frames still arrive...
    assert max(gaps) < 250, f"event loop stalled for {max(gaps)} ms"  # ...and the window never froze


def test_startup_problems_are_shown_in_the_window(qtbot, settings, face_video, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_text("not a model")
    window = open_window(qtbot, settings, face_video, checkpoint=str(bad))
    qtbot.waitUntil(lambda: "not a readable PyTorch checkpoint" in window.view.message, timeout=10000)
    assert "Not running" in window.status.text()
    missing = open_window(qtbot, settings, tmp_path / "missing.mp4")
    qtbot.waitUntil(lambda: "Source not found" in missing.view.message, timeout=10000)


def test_space_pauses_and_resumes(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    qtbot.waitUntil(lambda: window.latest is not None, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.worker.paused
    qtbot.wait(300)
    index = window.latest.analysis.index
    qtbot.wait(500)
    assert window.latest.analysis.index == index
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.latest.analysis.index > index, timeout=5000)


def test_window_remembers_geometry_and_options(qtbot, settings, face_video):
    window = MainWindow(Options(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(window)
    window.resize(760, 520)  # within the offscreen screen's 800x600
    window.strategy_actions["lift"].setChecked(True)
    window.close()
    again = MainWindow(Options(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(again)
    assert again.strategy == "lift"
    assert (again.width(), again.height()) == (760, 520)


def test_choosing_another_camera_reopens_and_is_remembered(qtbot, settings):
    # Either outcome names the camera: its picture in the status line, or why it cannot open.
    window = MainWindow(Options(detector="haar"), settings)
    qtbot.addWidget(window)
    window.show()
    window.start()
    window.camera_actions[1].trigger()
    qtbot.waitUntil(lambda: "camera 1" in window.view.message or "camera 1" in window.status.text(), timeout=15000)
    window.close()
    again = MainWindow(Options(detector="haar"), settings)
    qtbot.addWidget(again)
    assert again.options.camera == 1 and again.camera_actions[1].isChecked()


def test_camera_on_the_command_line_wins_over_the_remembered_one(qtbot, settings):
    settings.setValue("video/camera", 2)
    told = MainWindow(Options(camera=1, detector="haar"), settings)
    qtbot.addWidget(told)
    assert told.options.camera == 1 and told.camera_actions[1].isChecked()
    remembered = MainWindow(Options(detector="haar"), settings)
    qtbot.addWidget(remembered)
    assert remembered.options.camera == 2 and remembered.camera_actions[2].isChecked()


def notice_is_visible(window, text: str) -> bool:
    notice = window.notice
    return (text in notice.text() and notice.isVisible()
            and notice.width() >= notice.fontMetrics().horizontalAdvance(notice.text()))


def test_status_messages_are_visible(qtbot, settings, face_video, capfd):
    release = threading.Event()

    def slow_playlist(*args, **kwargs):  # Spotify taking its time
        release.wait(10)
        raise MoodtunesError("stopped by the test")

    # detector auto: YuNet cannot be downloaded in tests, so the window must say why it uses Haar.
    window = open_window(qtbot, settings, face_video, detector="auto", make_playlist=slow_playlist)
    wait_for_mood(qtbot, window)
    assert notice_is_visible(window, "YuNet unavailable")
    assert "warning: YuNet unavailable" in capfd.readouterr().err  # as the README says: on stderr too
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert notice_is_visible(window, "Paused")
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.notice.text() == ""
    window.make_playlist()
    window.make_playlist()
    assert notice_is_visible(window, "Already making a playlist")
    release.set()


def test_a_still_photo_shows_as_a_still(qtbot, settings, tmp_path, astronaut_bgr):
    from clips import face_scene

    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    window = open_window(qtbot, settings, photo, loop=False)
    window.worker.finished.connect(lambda kind: setattr(window, "_ended", kind))
    qtbot.waitUntil(lambda: getattr(window, "_ended", None) == "photos", timeout=20000)
    qtbot.wait(100)
    assert window.latest is not None and window.latest.analysis.faces
    assert window.view.message == ""  # no "End of the video" banner over the face
    assert "fps" not in window.status.text() and "photo me.jpg" in window.status.text()
    assert window.panel.mood_label.text() == "Happy"  # a photo has a mood at once: P works on it


def test_a_folder_of_photos_restarts_tracks_and_mood_per_photo(qtbot, settings, tmp_path, astronaut_bgr):
    from clips import face_scene

    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), face_scene(astronaut_bgr))
    window = open_window(qtbot, settings, tmp_path, loop=False)
    seen = {}
    window.worker.frame_ready.connect(lambda: None)

    def record():
        if window.latest is not None:
            seen[window.latest.analysis.photo] = window.latest.analysis
        return len(seen) == 2

    qtbot.waitUntil(record, timeout=30000)
    a, b = seen["a.png"], seen["b.png"]
    assert a.faces[0].track_id != b.faces[0].track_id  # the same place, yet another photo
    assert b.mood.since == b.timestamp  # the mood started with this photo


def test_sign_in_shows_its_link_and_can_be_cancelled(qtbot, settings, face_video, fake_spotify):
    window = open_window(qtbot, settings, face_video, open_url=lambda url: False)  # no browser could open
    wait_for_mood(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: window.panel.sign_in_box.isVisible(), timeout=10000)
    link = window.panel.sign_in_link
    assert f"{fake_spotify.base_url}/authorize?" in link.text()
    assert link.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    from PySide6.QtGui import QTextDocumentFragment

    link.setSelection(0, len(QTextDocumentFragment.fromHtml(link.text()).toPlainText()))
    assert "/authorize?" in link.selectedText()  # what Ctrl+C copies
    assert window.panel.cancel_button.isVisible()
    qtbot.mouseClick(window.panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in window.panel.playlist_label.text(), timeout=5000)
    assert not window.panel.sign_in_box.isVisible() and not window.playlist_worker.busy


def test_open_a_photo_shows_it_as_a_still_and_p_uses_its_mood(qtbot, settings, face_video, tmp_path, astronaut_bgr,
                                                              fake_spotify):
    from clips import face_scene

    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    opened = []

    def browser(url):
        consent_in_browser(url) if "/authorize" in url else opened.append(url)

    window = open_window(qtbot, settings, face_video, open_url=browser)
    qtbot.waitUntil(lambda: window.latest is not None, timeout=20000)
    assert window.open_action.shortcut().toString() == "Ctrl+O"
    window.open_file(str(photo))  # what File > Open photo or video does with the chosen file
    qtbot.waitUntil(lambda: window.latest is not None and window.latest.analysis.photo == "me.jpg", timeout=20000)
    assert window.latest.analysis.mood.label == "happy" and "photo me.jpg" in window.status.text()
    assert window.camera_group.checkedAction() is None
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "open in Spotify" in window.panel.playlist_label.text(), timeout=20000)
    (playlist,) = fake_spotify.playlists.values()
    assert playlist["name"].startswith("moodtunes · Happy")
