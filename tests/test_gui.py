"""The window, offscreen: frames arrive, P makes a playlist, C calibrates, Q quits, slow inference never
freezes it; and the mood timeline as a real X window shows it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import replace

import cv2
import numpy as np
import pytest
from clips import face_scene, write_clip
from conftest import FERPLUS_ZIP, ROOT, SHIPPED_CHECKPOINT, app_settings, needs
from fake_spotify import consent_in_browser
from PySide6.QtCore import QElapsedTimer, QRect, QSettings, Qt, QTimer
from PySide6.QtGui import QColor, QImage

from emotion.calibration import Calibration, saved_calibration_path
from emotion.classes import STYLES
from emotion.errors import MoodtunesError
from emotion.recognizer import EmotionRecognizer
from gui.timeline import time_ticks
from gui.window import MainWindow


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "moodtunes.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def yunet_gone(tmp_path, monkeypatch):
    """The shipped YuNet file missing (a broken install): --detector auto falls back to Haar and says why."""
    from emotion import detection

    monkeypatch.setattr(detection, "YUNET_MODEL", tmp_path / detection.YUNET_MODEL.name)


def open_window(qtbot, settings, source, open_url=lambda url: None, make_recognizer=None, make_playlist=None,
                app=None, **options):
    """The window on ``source``, shown and started; ``options`` as the command line names them, ``app`` sets
    other fields of its AppSettings (follow=True, ...)."""
    options = {"loop": True, "detector": "haar", **options}
    window = MainWindow(replace(app_settings(source=str(source), **options), **(app or {})), settings,
                        make_playlist=make_playlist, open_url=open_url, make_recognizer=make_recognizer)
    qtbot.addWidget(window)
    with qtbot.waitActive(window):  # shortcuts act in the active window, as for a user's keystrokes
        window.show()
        window.activateWindow()
    window.start()
    return window


def wait_for_mood(qtbot, window):
    qtbot.waitUntil(lambda: window.engine.latest is not None and window.engine.latest.analysis.mood is not None,
                    timeout=20000)


def test_frames_reach_the_view_and_the_panel(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    wait_for_mood(qtbot, window)
    assert window.view.frame is not None and window.view.message == ""
    assert window.view.frame.image.width() == 640
    assert window.engine.section.mood_label.text() == "Happy"
    assert window.engine.section.bars["happy"].value() > 50
    assert "fps" in window.status.text() and "Haar cascade" in window.status.text()


def test_p_makes_a_playlist_and_shows_its_link(qtbot, settings, face_video, fake_spotify):
    opened = []

    def browser(url):
        consent_in_browser(url) if "/authorize" in url else opened.append(url)

    window = open_window(qtbot, settings, face_video, open_url=browser)
    wait_for_mood(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "open in Spotify" in window.playlist.section.label.text(), timeout=20000)
    (playlist,) = fake_spotify.playlists.values()
    text = window.playlist.section.label.text()
    assert playlist["name"] in text and "25 tracks" in text
    assert f"https://open.spotify.com/playlist/{playlist['id']}" in text and opened
    assert window.playlist.section.label.openExternalLinks()


def test_p_without_credentials_shows_the_setup_steps(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    wait_for_mood(qtbot, window)
    window.playlist.action.trigger()
    qtbot.waitUntil(lambda: "developer.spotify.com" in window.playlist.section.label.text(), timeout=10000)
    text = window.playlist.section.label.text()
    assert "open.spotify.com/search/" in text
    # Every step of the README's setup, and the dashboard as a link the user can click.
    assert '<a href="https://developer.spotify.com/dashboard">' in text
    assert "User Management" in text and "Premium" in text and "SPOTIPY_CLIENT_ID" in text
    assert "<br>5) " in text  # one step a line
    # At the window's default size the whole text can be reached: it fits, or its area scrolls.
    scroll, label = window.playlist.section.scroll, window.playlist.section.label
    qtbot.waitUntil(lambda: label.height() > 0)
    assert label.height() <= scroll.viewport().height() or scroll.verticalScrollBar().isVisible()
    assert scroll.verticalScrollBar().maximum() >= label.height() - scroll.viewport().height()


def test_p_before_any_mood_asks_to_look_at_the_camera(qtbot, settings, face_video):
    window = MainWindow(app_settings(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(window)
    window.playlist.make_playlist()
    assert "No mood yet" in window.playlist.section.label.text()


def test_q_closes_and_releases_the_source(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    source = window.engine.worker._live._source
    started = time.monotonic()
    qtbot.keyClick(window, Qt.Key.Key_Q)
    assert time.monotonic() - started < 1.0
    assert not window.isVisible()
    assert not window.engine.worker.running
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
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    gaps, clock = [], QElapsedTimer()
    clock.start()

    def tick():
        gaps.append(clock.restart())

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    frames_before = window.engine.latest.analysis.index
    qtbot.wait(2000)
    timer.stop()
    assert window.engine.latest.analysis.index > frames_before  # frames still arrive...
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
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.engine.worker.paused
    qtbot.wait(300)
    index = window.engine.latest.analysis.index
    qtbot.wait(500)
    assert window.engine.latest.analysis.index == index
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.engine.latest.analysis.index > index, timeout=5000)


def test_window_remembers_geometry_and_options(qtbot, settings, face_video):
    window = MainWindow(app_settings(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(window)
    window.resize(760, 520)  # within the offscreen screen's 800x600
    window.playlist.strategy_actions["lift"].setChecked(True)
    window.close()
    again = MainWindow(app_settings(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(again)
    assert again.playlist.strategy == "lift"
    assert (again.width(), again.height()) == (760, 520)


def test_choosing_another_camera_reopens_and_is_remembered(qtbot, settings):
    # Either outcome names the camera: its picture in the status line, or why it cannot open.
    window = MainWindow(app_settings(detector="haar"), settings)
    qtbot.addWidget(window)
    window.show()
    window.start()
    window.engine.camera_actions[1].trigger()
    qtbot.waitUntil(lambda: "camera 1" in window.view.message or "camera 1" in window.status.text(), timeout=15000)
    window.close()
    again = MainWindow(app_settings(detector="haar"), settings)
    qtbot.addWidget(again)
    assert again.engine.source.camera == 1 and again.engine.camera_actions[1].isChecked()


def test_camera_on_the_command_line_wins_over_the_remembered_one(qtbot, settings):
    settings.setValue("video/camera", 2)
    told = MainWindow(app_settings(camera=1, detector="haar"), settings)
    qtbot.addWidget(told)
    assert told.engine.source.camera == 1 and told.engine.camera_actions[1].isChecked()
    remembered = MainWindow(app_settings(detector="haar"), settings)
    qtbot.addWidget(remembered)
    assert remembered.engine.source.camera == 2 and remembered.engine.camera_actions[2].isChecked()


def notice_is_visible(window, text: str) -> bool:
    """The notice says ``text`` and all its lines are on screen: none cut off by the status bar or the window."""
    notice = window.notice
    return (text in notice.text() and notice.isVisible()
            and notice.heightForWidth(notice.width()) <= notice.height()
            and notice.visibleRegion().boundingRect() == notice.rect())


def status_text_rect(window) -> QRect:
    """Where the status line's text is painted, in window coordinates: right-aligned, elided to its width."""
    status = window.status
    shown = status.fontMetrics().elidedText(status.text(), Qt.TextElideMode.ElideRight, status.contentsRect().width())
    width = status.fontMetrics().horizontalAdvance(shown)
    right = status.mapTo(window, status.contentsRect().topRight())
    return QRect(right.x() - width + 1, right.y(), width, status.height())


def test_status_messages_are_visible(qtbot, settings, face_video, capfd, yunet_gone):
    release = threading.Event()

    def slow_playlist(*args, **kwargs):  # Spotify taking its time
        release.wait(10)
        raise MoodtunesError("stopped by the test")

    # detector auto without its YuNet file: the window must say why it uses Haar.
    window = open_window(qtbot, settings, face_video, detector="auto", make_playlist=slow_playlist)
    wait_for_mood(qtbot, window)
    assert notice_is_visible(window, "YuNet unavailable")
    assert "warning: YuNet unavailable" in capfd.readouterr().err  # as the README says: on stderr too
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert notice_is_visible(window, "Paused")
    assert "fps" not in window.status.text()  # nothing is being analysed: no frame rate to report
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.notice.text() == ""
    qtbot.waitUntil(lambda: "fps" in window.status.text(), timeout=5000)
    window.playlist.make_playlist()
    window.playlist.make_playlist()
    assert notice_is_visible(window, "Already making a playlist")
    release.set()


def test_a_still_photo_shows_as_a_still(qtbot, settings, tmp_path, astronaut_bgr):
    from clips import face_scene

    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    window = open_window(qtbot, settings, photo, loop=False)
    window.engine.worker.finished.connect(lambda kind: setattr(window, "_ended", kind))
    qtbot.waitUntil(lambda: getattr(window, "_ended", None) == "photos", timeout=20000)
    qtbot.wait(100)
    assert window.engine.latest is not None and window.engine.latest.analysis.faces
    assert window.view.message == ""  # no "End of the video" banner over the face
    assert "fps" not in window.status.text() and "photo me.jpg" in window.status.text()
    assert window.engine.section.mood_label.text() == "Happy"  # a photo has a mood at once: P works on it
    # A still has held its mood for no time at all.
    assert window.engine.section.mood_detail.text().endswith("confident")


def test_a_folder_of_photos_restarts_tracks_and_mood_per_photo(qtbot, settings, tmp_path, astronaut_bgr):
    from clips import face_scene

    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), face_scene(astronaut_bgr))
    window = open_window(qtbot, settings, tmp_path, loop=False)
    seen = {}
    window.engine.worker.frame_ready.connect(lambda: None)

    def record():
        if window.engine.latest is not None:
            seen[window.engine.latest.analysis.photo] = window.engine.latest.analysis
        return len(seen) == 2

    qtbot.waitUntil(record, timeout=30000)
    a, b = seen["a.png"], seen["b.png"]
    assert a.faces[0].track_id != b.faces[0].track_id  # the same place, yet another photo
    assert b.mood.since == b.timestamp  # the mood started with this photo


def test_sign_in_shows_its_link_and_can_be_cancelled(qtbot, settings, face_video, fake_spotify):
    window = open_window(qtbot, settings, face_video, open_url=lambda url: False)  # no browser could open
    wait_for_mood(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: window.playlist.section.sign_in_box.isVisible(), timeout=10000)
    link = window.playlist.section.sign_in_link
    assert f"{fake_spotify.base_url}/authorize?" in link.text()
    assert link.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    from PySide6.QtGui import QTextDocumentFragment

    link.setSelection(0, len(QTextDocumentFragment.fromHtml(link.text()).toPlainText()))
    assert "/authorize?" in link.selectedText()  # what Ctrl+C copies
    assert window.playlist.section.cancel_button.isVisible()
    qtbot.mouseClick(window.playlist.section.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in window.playlist.section.label.text(), timeout=5000)
    assert not window.playlist.section.sign_in_box.isVisible()
    # The thread emits its last signal, then returns: it may still be alive when the window shows the text.
    qtbot.waitUntil(lambda: not window.playlist.worker.busy, timeout=2000)


def test_open_a_photo_shows_it_as_a_still_and_p_uses_its_mood(qtbot, settings, face_video, tmp_path, astronaut_bgr,
                                                              fake_spotify):
    from clips import face_scene

    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    opened = []

    def browser(url):
        consent_in_browser(url) if "/authorize" in url else opened.append(url)

    window = open_window(qtbot, settings, face_video, open_url=browser)
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    assert window.engine.open_action.shortcut().toString() == "Ctrl+O"
    window.engine.open_file(str(photo))  # what File > Open photo or video does with the chosen file
    qtbot.waitUntil(lambda: window.engine.latest is not None and window.engine.latest.analysis.photo == "me.jpg",
                    timeout=20000)
    assert window.engine.latest.analysis.mood.label == "happy" and "photo me.jpg" in window.status.text()
    assert window.engine.camera_group.checkedAction() is None
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: "open in Spotify" in window.playlist.section.label.text(), timeout=20000)
    (playlist,) = fake_spotify.playlists.values()
    assert playlist["name"].startswith("moodtunes · Happy")


# --- the status bar ---------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1100, 700])
def test_the_haar_notice_never_covers_the_status_text(qtbot, settings, face_video, width, yunet_gone):
    window = open_window(qtbot, settings, face_video, detector="auto")
    window.resize(width, 560)
    wait_for_mood(qtbot, window)
    qtbot.waitUntil(lambda: "fps" in window.status.text(), timeout=5000)
    qtbot.wait(50)  # the status bar has taken the wrapped notice's height
    assert notice_is_visible(window, "YuNet unavailable")  # whole: wrapped onto more lines when it must
    notice = QRect(window.notice.mapTo(window, window.notice.rect().topLeft()), window.notice.size())
    text = status_text_rect(window)
    assert text.width() > 40, "the engine line must not vanish"
    assert notice.right() < text.left(), f"the notice {notice} runs under the status text {text}"
    shown = window.status.fontMetrics().elidedText(window.status.text(), Qt.TextElideMode.ElideRight,
                                                   window.status.contentsRect().width())
    assert shown.split(" · ")[0].endswith("fps")  # the frame rate comes first and stays readable
    assert window.status.toolTip() == window.status.text()  # the whole engine line, for what was cut


# --- one message when there is no camera -----------------------------------------------------

def test_without_a_camera_the_window_says_one_thing_with_its_own_actions(qtbot, settings):
    window = MainWindow(app_settings(camera=3, detector="haar"), settings)  # this machine has no camera 3
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: window.engine.source_problem != "", timeout=20000)
    problem = window.engine.source_problem
    assert "camera 3" in problem and "Video → Camera N" in problem and "File → Open… (Ctrl+O)" in problem
    assert "--camera" not in problem and "--source" not in problem  # the command line's fixes, not the window's
    assert window.view.message == problem  # in full on the video, and short everywhere else (issue 37)
    mood = window.engine.section
    assert mood.mood_label.text() == "Not running" and mood.mood_detail.text() == "No camera"
    window.playlist.make_playlist()
    assert window.playlist.section.label.text() == "No mood yet. No camera."
    window.calibration.calibrate()
    assert window.calibration.section.message.text() == "No camera: nothing to calibrate on."
    assert window.status.text() == "Not running: no camera"


def test_the_command_line_keeps_its_own_camera_advice(tmp_path):
    from emotion.sources import CameraSource, SourceError

    class NoCamera:
        def isOpened(self):  # noqa: N802 (cv2.VideoCapture's name)
            return False

        def release(self):
            pass

    with pytest.raises(SourceError, match="--camera N"):
        CameraSource(0, open_timeout=0.2, capture_factory=NoCamera)


# --- calibration (C) ---------------------------------------------------------------------------

NEUTRAL_FACE = "FER2013Valid/fer0028645.png"  # all 10 FER+ annotators called it neutral


@pytest.fixture(scope="module")
def no_face_video(tmp_path_factory):
    """A 2 s clip of a textured wall: something to look at, nobody in it."""
    rng = np.random.default_rng(0)
    wall = cv2.GaussianBlur(rng.integers(60, 200, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    return write_clip(tmp_path_factory.mktemp("wall") / "wall.avi", [wall] * 30, fps=15)


@pytest.fixture(scope="module")
def neutral_video(tmp_path_factory):
    """A 2 s clip of a real, relaxed face (a FER+ validation face, 48 px, shown at 300 px), held still."""
    with zipfile.ZipFile(FERPLUS_ZIP) as archive:
        face = cv2.imdecode(np.frombuffer(archive.read(NEUTRAL_FACE), np.uint8), cv2.IMREAD_COLOR)
    frame = face_scene(face, dx=140, face_side=300)
    return write_clip(tmp_path_factory.mktemp("neutral") / "neutral.avi", [frame] * 30, fps=15)


@pytest.fixture(scope="module")
def decided_checkpoint(tmp_path_factory):
    """The shipped model with a typical neutral face, as `python -m training.decide` stores one: a calibration
    needs it (the shipped file may not have one yet)."""
    from emotion.checkpoint import load_checkpoint, save_checkpoint
    from emotion.decision import DecisionRule

    shipped = load_checkpoint(SHIPPED_CHECKPOINT)
    path = tmp_path_factory.mktemp("decided") / "emotion_ferplus_decided.pt"
    typical_neutral = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4.0)  # confidently neutral
    save_checkpoint(path, shipped.model, mean=shipped.mean, std=shipped.std, metadata=shipped.metadata,
                    decision=DecisionRule(shipped.decision.prior, shipped.decision.tau, typical_neutral))
    return path


@pytest.fixture(scope="module")
def decided_model_id(decided_checkpoint) -> str:
    return EmotionRecognizer(decided_checkpoint, detector="haar", device="cpu").model_id


def test_c_without_a_face_says_no_face_found(qtbot, settings, no_face_video, decided_checkpoint):
    window = open_window(qtbot, settings, no_face_video, checkpoint=str(decided_checkpoint))
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_C)
    panel = window.calibration.section
    assert "relaxed, neutral face" in panel.message.text() and panel.progress.isVisible()
    assert window.view.capture is not None  # the banner on the video, where the person looks
    qtbot.waitUntil(lambda: panel.progress.value() > 30, timeout=10000)
    qtbot.waitUntil(lambda: "No face found" in panel.message.text(), timeout=15000)
    assert not panel.progress.isVisible() and window.view.capture is None
    assert "Not calibrated" in panel.state.text()
    assert not saved_calibration_path().exists()


@needs(FERPLUS_ZIP)
def test_c_on_a_relaxed_face_calibrates_saves_and_reset_forgets(qtbot, settings, neutral_video, decided_checkpoint):
    window = open_window(qtbot, settings, neutral_video, checkpoint=str(decided_checkpoint))
    qtbot.waitUntil(lambda: window.engine.latest is not None and bool(window.engine.latest.analysis.faces),
                    timeout=20000)
    assert "Not calibrated" in window.calibration.section.state.text()
    window.calibration.calibrate_action.trigger()  # the menu item and toolbar button
    panel = window.calibration.section
    qtbot.waitUntil(lambda: "Calibrated on" in panel.message.text(), timeout=20000)
    qtbot.waitUntil(lambda: panel.state.text().startswith("Calibrated"), timeout=5000)
    assert window.calibration.path == saved_calibration_path() and saved_calibration_path().is_file()
    assert Calibration.load(saved_calibration_path()).frames >= 10

    window.calibration.reset_action.trigger()
    assert not saved_calibration_path().exists()
    assert "Calibration reset" in panel.message.text()
    qtbot.waitUntil(lambda: "Not calibrated" in panel.state.text(), timeout=5000)
    qtbot.wait(300)
    assert "Calibration reset" in panel.message.text()  # the old result does not come back


def write_calibration(path, model_id: str) -> None:
    Calibration(baseline=(0.0,) * 7, model_id=model_id, model_name="emotion_ferplus.onnx", frames=30,
                created="2026-01-01T00:00:00+00:00").save(path)


def test_c_with_a_model_that_cannot_use_a_calibration_says_so_at_once(qtbot, settings, face_video,
                                                                      tiny_checkpoint):
    window = open_window(qtbot, settings, face_video, checkpoint=str(tiny_checkpoint))  # no typical neutral face
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_C)
    message = window.calibration.section.message
    qtbot.waitUntil(lambda: "typical neutral" in message.text(), timeout=2000)  # not after 3 s of holding still
    assert "training.decide" in message.text() and window.view.capture is None
    assert "Not calibrated" in window.calibration.section.state.text() and not saved_calibration_path().exists()


def first_analysis(qtbot, window):
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    return window.engine.latest.analysis


def test_the_window_loads_the_calibration_as_the_command_line_does(qtbot, settings, face_video, tmp_path,
                                                                   decided_checkpoint, decided_model_id):
    model = {"checkpoint": str(decided_checkpoint)}
    write_calibration(saved_calibration_path(), decided_model_id)
    saved = open_window(qtbot, settings, face_video, **model)
    assert first_analysis(qtbot, saved).calibrated
    qtbot.waitUntil(lambda: saved.calibration.section.state.text().startswith("Calibrated"), timeout=5000)
    ignored = open_window(qtbot, settings, face_video, no_calibration=True, **model)
    assert not first_analysis(qtbot, ignored).calibrated
    own = tmp_path / "mine.json"
    write_calibration(own, decided_model_id)
    saved_calibration_path().unlink()
    given = open_window(qtbot, settings, face_video, calibration=str(own), **model)
    assert first_analysis(qtbot, given).calibrated and given.calibration.path == own


def test_an_unusable_calibration_is_a_notice_not_a_stop(qtbot, settings, face_video):
    write_calibration(saved_calibration_path(), "another model's sha")
    foreign = open_window(qtbot, settings, face_video)
    assert not first_analysis(qtbot, foreign).calibrated
    assert notice_is_visible(foreign, "measured with another model")
    saved_calibration_path().write_text("{not json")
    damaged = open_window(qtbot, settings, face_video)
    assert not first_analysis(qtbot, damaged).calibrated  # it runs: C can make a good one
    assert notice_is_visible(damaged, "Cannot read the calibration")


# --- the mood timeline and the session summary -----------------------------------------------

HAPPY = QColor(STYLES["happy"].colour)


def near(pixel: QColor, colour: QColor, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in ((pixel.red(), colour.red()), (pixel.green(), colour.green()),
                                                  (pixel.blue(), colour.blue())))


def read_strip(image: QImage, strip: QRect) -> tuple[list[int], list[int]]:
    """Along the strip's middle row: the x of each happy pixel, and of each white (mark) pixel."""
    y = strip.center().y()
    pixels = [(x, image.pixelColor(x, y)) for x in range(strip.left(), strip.right() + 1)]
    return ([x for x, pixel in pixels if near(pixel, HAPPY)],
            [x for x, pixel in pixels if min(pixel.red(), pixel.green(), pixel.blue()) > 230])


def check_timeline(image: QImage, strip: QRect, span: float, mood_from: float, mood_to: float,
                   pressed: float) -> None:
    """What a person sees: happy from ``mood_from`` to ``mood_to`` seconds ago and nowhere else, one white mark
    ``pressed`` seconds ago, and the axis' ticks."""
    per_second = strip.width() / span
    tolerance = max(6, round(0.4 * per_second))  # a frame period and a repaint's worth of time
    happy, marks = read_strip(image, strip)
    assert happy, "no happy on the strip"
    left, right = strip.right() - mood_from * per_second, strip.right() - mood_to * per_second
    assert abs(min(happy) - left) <= tolerance and abs(max(happy) - right) <= tolerance, \
        f"happy from x={min(happy)} to {max(happy)}, expected {left:.0f} to {right:.0f}"
    holes = set(range(min(happy), max(happy) + 1)) - set(happy)
    assert all(any(abs(x - mark) <= 2 for mark in marks) for x in holes), "the happy run is broken"
    assert marks, "no playlist mark on the strip"
    expected_mark = strip.right() - pressed * per_second
    assert max(marks) - min(marks) <= 3 and abs(marks[0] - expected_mark) <= tolerance, \
        f"marks at {marks}, expected one at {expected_mark:.0f}"
    head = image.pixelColor(round(sum(marks) / len(marks)), strip.top() - 3)
    assert min(head.red(), head.green(), head.blue()) > 200  # the mark's head above the strip
    axis_y = strip.bottom() + 3
    for age, _label in time_ticks(span):
        x = round(strip.right() - age * per_second)
        assert any(image.pixelColor(x + dx, axis_y).red() > 150 for dx in (-1, 0, 1)), f"no tick {age} s ago"


def test_the_timeline_shows_the_mood_and_the_playlist_press(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video, timeline_span_s=20.0)
    moods = []  # when each frame with a mood was shown, on the timeline's clock

    def note_mood():
        if window.engine.latest is not None and window.engine.latest.analysis.mood is not None:
            moods.append((window.timeline.clock(), window.engine.latest.analysis.mood.label))

    window.engine.worker.frame_ready.connect(note_mood)  # after the window's own slot: it sees what was shown
    qtbot.waitUntil(lambda: bool(moods) and window.timeline.clock() - moods[0][0] > 5, timeout=30000)
    qtbot.keyClick(window, Qt.Key.Key_P)  # no Spotify set up here: a press all the same
    pressed = window.timeline.clock()
    qtbot.wait(2000)
    # The strip then ends where the frames stopped: a gap grows on the right.
    window.engine.pause_action.setChecked(True)
    qtbot.wait(600)
    image = window.timeline.strip.grab().toImage()
    now = window.timeline.clock()
    assert {label for _t, label in moods} == {"happy"}
    check_timeline(image, window.timeline.strip.strip_rect().toRect(), 20.0, now - moods[0][0], now - moods[-1][0],
                   now - pressed)
    assert [label for _age, label in time_ticks(20.0)] == ["-20 s", "-15 s", "-10 s", "-5 s", "now"]
    assert [label for _age, label in time_ticks(300.0)] == ["-5 min", "-4 min", "-3 min", "-2 min", "-1 min", "now"]


def test_the_session_summary_gives_each_moods_share(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    wait_for_mood(qtbot, window)
    qtbot.wait(1500)
    window.timeline.summary_action.trigger()
    assert window.timeline.summary.isVisible()
    text = window.timeline.summary.text.text()
    assert "Happy" in text and "100%" in text and "this session" in text


def test_the_history_is_fed_on_the_gui_thread_only(qtbot, settings, face_video):
    window = open_window(qtbot, settings, face_video)
    threads, add = set(), window.timeline.history.add

    def recording_add(*args):
        threads.add(threading.current_thread().name)
        add(*args)

    window.timeline.history.add = recording_add
    qtbot.waitUntil(lambda: bool(window.timeline.history.seconds), timeout=20000)
    assert threads == {threading.main_thread().name}


def test_the_timeline_in_a_real_x_window_shows_the_mood_and_the_press(face_video, tmp_path, x_display):
    env = x_display
    shot = subprocess.Popen([sys.executable, str(ROOT / "tests" / "window_shot.py"), str(face_video), str(tmp_path),
                             "--span", "20"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    watchdog = threading.Timer(120, shot.kill)
    watchdog.start()
    try:
        ready = json.loads(shot.stdout.readline() or "{}")
        assert "window" in ready, f"the window never showed a mood: {shot.stderr.read()[-2000:] if shot.poll() else ''}"
        subprocess.run(["xdotool", "windowfocus", "--sync", str(ready["window"])], env=env, timeout=10, check=True)
        subprocess.run(["xdotool", "key", "p"], env=env, timeout=10, check=True)  # as a person presses it
        done = json.loads(shot.stdout.readline() or "{}")
        assert "screenshot" in done, shot.stderr.read()[-2000:]
        assert shot.wait(20) == 0
    finally:
        watchdog.cancel()
        if shot.poll() is None:
            shot.kill()
    image = QImage(done["screenshot"])
    assert not image.isNull()
    assert done["labels"] == ["happy"]
    check_timeline(image, QRect(*done["strip"]), 20.0, done["mood_from_s"], done["mood_to_s"], done["pressed_s"])


def test_the_camera_resolution_is_a_menu_choice_that_is_remembered(qtbot, settings, face_video, tmp_path):
    window = MainWindow(app_settings(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(window)
    offered = {action.text(): action for action in window.engine.resolution_group.actions()}
    assert list(offered) == ["640×480 (default)", "1280×720", "1920×1080"]
    assert offered["640×480 (default)"].isChecked()
    offered["1280×720"].trigger()  # a file is playing: remembered for the camera, nothing restarts
    assert window.engine.source.resolution == (1280, 720) and window.engine.worker is None
    window.close()
    again = MainWindow(app_settings(source=str(face_video), detector="haar"), settings)
    qtbot.addWidget(again)
    assert again.engine.source.resolution == (1280, 720) and again.engine.resolution_actions[(1280, 720)].isChecked()
    given = MainWindow(app_settings(source=str(face_video), detector="haar", resolution=(1920, 1080)), settings)
    qtbot.addWidget(given)
    assert given.engine.resolution_actions[(1920, 1080)].isChecked()  # --resolution wins over the remembered one


@pytest.mark.parametrize(("sent", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_and_sigterm_close_the_window_as_q_does(tmp_path, face_video, sent, status):
    """Ctrl-C in the terminal used to print a KeyboardInterrupt from inside a paint event and leave
    the window open for good; now it closes (sources released, settings saved) with 128 + signal."""
    import os
    import signal

    photo = tmp_path / "me.jpg"  # a still: nothing arrives to give Python control, the hard case
    cv2.imwrite(str(photo), cv2.VideoCapture(str(face_video)).read()[1])
    for source in (face_video, photo):
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "MOODTUNES_CONFIG_DIR": str(tmp_path / "moodtunes")}
        app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--source", str(source), "--loop",
                                "--detector", "haar"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(5)  # the window up and its event loop running (it starts in about half a second)
        assert app.poll() is None, app.communicate()[1]
        app.send_signal(getattr(signal, sent))
        try:
            _, stderr = app.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            pytest.fail(f"the window ignored {sent}: {app.communicate()[1][-500:]}")
        assert app.returncode == status and "Traceback" not in stderr, stderr
