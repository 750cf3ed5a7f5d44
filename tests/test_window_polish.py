"""The window as a person sees it, measured on grabs of what it paints: face labels apart and inside the
video, banners beside the faces, one full no-camera message, no "no face" while the camera starts, a new
source without the old one's state, Spotify's steps without scrolling; and C on a still, whichever way
the still was opened."""

from __future__ import annotations

import zipfile
from types import MappingProxyType

import cv2
import numpy as np
import pytest
from clips import face_scene
from conftest import FERPLUS_ZIP, app_settings, needs
from PySide6.QtCore import QRectF, QSettings, QSizeF
from PySide6.QtGui import QColor, QFontMetricsF, QImage

from emotion.calibration import Calibration, saved_calibration_path
from emotion.classes import EMOTIONS, STYLES
from emotion.pipeline import FrameAnalysis, TrackedFace
from emotion.results import FaceResult
from gui.widgets import NO_FACE, VideoView, place_labels
from gui.window import MainWindow
from gui.workers import ViewFrame, to_qimage

FRAME = (640, 480)


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "moodtunes.ini"), QSettings.Format.IniFormat)


def view_frame(boxes: list[tuple[int, int, int, int]], labels: list[str]) -> ViewFrame:
    """A frame of FRAME's size on a flat gray with a face of ``labels[i]`` at ``boxes[i]``, as the engine hands it."""
    image = np.full((FRAME[1], FRAME[0], 3), 90, np.uint8)
    image.flags.writeable = False
    faces = []
    for k, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        probabilities = MappingProxyType({name: 0.6 if name == label else 0.4 / 6 for name in EMOTIONS})
        result = FaceResult(box, None, probabilities, label, 0.6)
        faces.append(TrackedFace(result, k + 1, label, 0.6, probabilities))
    analysis = FrameAnalysis(0, 0.0, image, tuple(faces), None, MappingProxyType({}))
    return ViewFrame(to_qimage(image), analysis, 30.0)


def shown(qtbot, frame: ViewFrame, size=(700, 525), message: str = "", capture: str | None = None) -> tuple:
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show_frame(frame)
    view.no_face_text = NO_FACE["camera"]
    if message:
        view.show_message(message)
    if capture:
        view.show_capture(capture, 0.5)
    return view, view.grab().toImage()


def near(pixel: QColor, colour: QColor, tolerance: int = 16) -> bool:
    return all(abs(a - b) <= tolerance for a, b in ((pixel.red(), colour.red()), (pixel.green(), colour.green()),
                                                  (pixel.blue(), colour.blue())))


def share_of(image: QImage, rect: QRectF, colour: QColor, tolerance: int = 16) -> float:
    """The share of the pixels inside ``rect`` (1 px in from its edges) that are ``colour``."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    pixels = pixels[:, : 3 * rgb.width()].reshape(rgb.height(), rgb.width(), 3).astype(int)
    inner = rect.toAlignedRect().adjusted(1, 1, -1, -1)
    region = pixels[inner.top() : inner.bottom() + 1, inner.left() : inner.right() + 1]
    target = np.array([colour.red(), colour.green(), colour.blue()])
    return float((np.abs(region - target) <= tolerance).all(axis=2).mean())


def disjoint(rects: list[QRectF]) -> bool:
    return not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])


# --- labels ----------------------------------------------------------------------------------------

CLOSE_FACES = [  # a group whose labels used to land on each other ("r eutral 60%" under "neutral 39%")
    ((100, 120, 90, 90), "neutral"),
    ((110, 205, 90, 90), "happy"),  # right under the first: its label "above" is on the first's box
    ((195, 118, 90, 90), "angry"),  # beside the first, at the same height
    ((570, 10, 68, 80), "sad"),  # at the top-right corner: no room above, none to its right
    ((0, 400, 70, 78), "surprise"),  # at the bottom-left corner: no room below
]


def test_labels_of_close_faces_are_apart_and_inside_the_video(qtbot, tmp_path):
    boxes, labels = [box for box, _ in CLOSE_FACES], [label for _, label in CLOSE_FACES]
    view, grab = shown(qtbot, view_frame(boxes, labels))
    layout = view.label_layout()
    rects = [rect for _text, rect in layout]
    assert all(rect is not None for rect in rects)
    area = view.image_rect()
    assert all(area.contains(rect) for rect in rects), (area, rects)
    assert disjoint(rects)
    # What is painted: each label's own colour fills its rectangle (its text in black on it), so no other
    # label was painted over it; the text fits the rectangle it was given.
    metrics = QFontMetricsF(view.label_font())
    for (text, rect), label in zip(layout, labels, strict=True):
        assert share_of(grab, rect, QColor(STYLES[label].colour)) > 0.55, (label, rect)
        assert rect.width() >= metrics.horizontalAdvance(text)
    grab.save(str(tmp_path / "labels.png"))


def test_place_labels_keeps_a_crowd_apart():
    """Many faces in a row at random heights: every label inside, none over another."""
    rng = np.random.default_rng(3)
    area = QRectF(10, 20, 640, 360)
    for _ in range(50):
        boxes = [QRectF(float(x), float(rng.integers(0, 330)), 50, 50) for x in rng.integers(0, 600, 12)]
        sizes = [QSizeF(float(rng.integers(60, 110)), 22) for _ in boxes]
        rects = [rect for rect in place_labels(boxes, sizes, area) if rect is not None]
        assert len(rects) >= 10  # all but a crowd's last few find a place
        assert all(area.contains(rect) for rect in rects) and disjoint(rects)


# --- banners ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["top", "bottom"])
def test_banners_never_cover_a_face(qtbot, tmp_path, where):
    y = 8 if where == "top" else FRAME[1] - 130
    boxes = [(60, y, 120, 120), (300, y + 4, 110, 115)]
    end = "End of the video. Open it again with File → Open… (Ctrl+O) to replay it."
    view, grab = shown(qtbot, view_frame(boxes, ["happy", "sad"]), message=end,
                       capture="Hold a relaxed, neutral face... 2 s")
    banners = view.banners()
    assert [text for text, _band in banners] == ["Hold a relaxed, neutral face... 2 s", end]
    faces = view.face_rects()
    for _text, band in banners:
        assert view.image_rect().contains(band)
        assert not any(band.intersects(face) for face in faces)
        assert (band.top() > faces[0].bottom()) == (where == "top")  # the free strip, away from the faces
    # On the pixels: the boxes' coloured edges are all there (nothing dark painted over them)...
    for face, label in zip(faces, ["happy", "sad"], strict=True):
        assert near(grab.pixelColor(round(face.left()), round(face.center().y())), QColor(STYLES[label].colour))
        bottom = grab.pixelColor(round(face.center().x()), round(face.bottom()))
        assert near(bottom, QColor(STYLES[label].colour))
    # ...and the banners are dark bands where the picture was gray.
    dimmed = QColor(*(round(90 * (255 - 190) / 255),) * 3)  # the gray under the banner's black at alpha 190
    for _text, band in banners:
        assert share_of(grab, QRectF(band.left(), band.top() + 2, 40, 6), dimmed) > 0.9
    grab.save(str(tmp_path / f"banners_{where}.png"))


# --- what the window says --------------------------------------------------------------------------

def started(qtbot, store, **options) -> MainWindow:
    """A window on the screen, its engine started, with the command line's ``options``."""
    window = MainWindow(app_settings(**options), store)
    qtbot.addWidget(window)
    window.show()
    window.start()
    return window


def astronaut_photo(tmp_path, astronaut_bgr):
    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    return photo


def test_without_a_camera_the_full_message_is_said_once(qtbot, store):
    window = MainWindow(app_settings(camera=3, detector="haar"), store)  # this machine has no camera 3
    qtbot.addWidget(window)
    window.show()
    assert window.view.message == "Starting camera…"  # not "no face" while the camera starts
    assert "No face" not in window.engine.section.mood_detail.text()
    window.playlist.make_playlist()
    assert "No face" not in window.playlist.section.label.text()
    window.start()
    qtbot.waitUntil(lambda: window.engine.source_problem != "", timeout=20000)
    problem = window.engine.source_problem
    window.playlist.make_playlist()
    window.calibration.calibrate()
    texts = [window.view.message, window.engine.section.mood_label.text(), window.engine.section.mood_detail.text(),
             window.calibration.section.message.text(), window.calibration.section.state.text(),
             window.playlist.section.label.text(), window.status.text(), window.notice.text()]
    assert texts.count(problem) == 1 and texts[0] == problem  # on the video, and only there
    assert all(len(text) <= 60 for text in texts[1:]), texts  # the others short
    assert window.engine.section.mood_detail.text() == "No camera"
    assert window.status.text() == "Not running: no camera"


def test_a_new_source_clears_the_old_mood_faces_and_errors(qtbot, store, tmp_path, astronaut_bgr):
    window = started(qtbot, store, source=astronaut_photo(tmp_path, astronaut_bgr), detector="haar")
    qtbot.waitUntil(lambda: window.engine.latest is not None and bool(window.engine.latest.analysis.faces),
                    timeout=20000)
    qtbot.waitUntil(lambda: window.engine.worker is not None and not window.engine.worker.running, timeout=10000)
    window.calibration.section.show_result("No face found: sit in front of the camera, face it and try again.")
    window.engine.status.show_notice("skipped a file: something old")
    assert window.engine.section.mood_label.text() == "Happy"
    happy = QColor(STYLES["happy"].colour)
    assert share_of(window.view.grab().toImage(), QRectF(window.view.rect()), happy) > 0.001  # its box and label
    window.engine.choose_camera(3)  # Video → Camera 3: none on this machine
    assert share_of(window.view.grab().toImage(), QRectF(window.view.rect()), happy) == 0  # gone from the video
    # At once: none of the photo's mood, boxes, calibration error or figures is left.
    assert window.view.frame is None and window.view.message == "Starting camera 3…"
    assert window.engine.section.mood_label.text() == "No mood yet"
    assert all(bar.value() == 0 for bar in window.engine.section.bars.values())
    assert window.calibration.section.message.text() == "" and window.notice.text() == ""
    assert "photo" not in window.status.text() and "me.jpg" not in window.status.text()
    qtbot.waitUntil(lambda: window.engine.source_problem != "", timeout=20000)
    assert window.engine.section.mood_label.text() == "Not running"


def test_spotify_steps_fit_without_scrolling_at_the_default_size(qtbot, store, tmp_path, astronaut_bgr):
    window = started(qtbot, store, source=astronaut_photo(tmp_path, astronaut_bgr), detector="haar")
    assert (window.width(), window.height()) == (1100, 700)
    qtbot.waitUntil(lambda: window.engine.latest is not None and window.engine.latest.analysis.mood is not None,
                    timeout=20000)
    window.playlist.action.trigger()
    section = window.playlist.section
    qtbot.waitUntil(lambda: "developer.spotify.com" in section.label.text(), timeout=10000)
    qtbot.wait(50)  # the layout settles
    label, scroll = section.label, section.scroll
    assert label.heightForWidth(label.width()) <= scroll.viewport().height()
    assert not scroll.verticalScrollBar().isVisible()
    assert label.visibleRegion().boundingRect().height() >= label.heightForWidth(label.width())
    window.grab().save(str(tmp_path / "steps.png"))


# --- C on a still ------------------------------------------------------------------------------------

NEUTRAL_FACE = "FER2013Valid/fer0028645.png"  # all 10 FER+ annotators called it neutral


@pytest.fixture(scope="module")
def neutral_photo(tmp_path_factory):
    with zipfile.ZipFile(FERPLUS_ZIP) as archive:
        face = cv2.imdecode(np.frombuffer(archive.read(NEUTRAL_FACE), np.uint8), cv2.IMREAD_COLOR)
    path = tmp_path_factory.mktemp("still") / "neutral.jpg"
    cv2.imwrite(str(path), face_scene(face, dx=140, face_side=300))
    return path


def calibrate_still(qtbot, window, capfd) -> tuple[str, str]:
    """C on the still the window shows; the panel's line and what stderr said."""
    qtbot.waitUntil(lambda: window.engine.latest is not None, timeout=20000)
    capfd.readouterr()
    window.calibration.calibrate()
    panel = window.calibration.section
    qtbot.waitUntil(lambda: panel.message.text().startswith(("Calibrated", "No face", "Your", "More", "Too",
                                                              "That")), timeout=20000)
    qtbot.wait(200)
    return panel.message.text(), capfd.readouterr().err


@needs(FERPLUS_ZIP)
@pytest.mark.parametrize("loop", [False, True])
def test_c_on_a_still_is_one_rule_whichever_way_it_was_opened(qtbot, store, capfd, neutral_photo, loop):
    saved = saved_calibration_path()
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text("{not json")  # a damaged calibration: the window starts uncalibrated and says why
    from_source = started(qtbot, store, source=neutral_photo, loop=loop)
    qtbot.waitUntil(lambda: "Cannot read the calibration" in from_source.notice.text(), timeout=20000)
    line, err = calibrate_still(qtbot, from_source, capfd)
    assert line == "Calibrated on 1 photo of your neutral face."  # as `moodtunes calibrate --source PHOTO`
    assert err == f"{line} Saved to {saved}.\n"  # one line, once, as `moodtunes calibrate` prints it
    assert Calibration.load(saved).frames == 1
    qtbot.waitUntil(lambda: from_source.calibration.section.state.text().startswith("Calibrated"), timeout=5000)
    assert "calibration" not in from_source.notice.text().lower()  # no stale "cannot read the calibration"

    saved.write_text("{not json")
    capfd.readouterr()
    opened = started(qtbot, store, camera=3, loop=loop)  # no camera here; then File → Open
    qtbot.waitUntil(lambda: opened.engine.source_problem != "", timeout=20000)
    opened.engine.open_file(str(neutral_photo))
    qtbot.waitUntil(lambda: "Cannot read the calibration" in opened.notice.text(), timeout=20000)
    opened.engine.open_file(str(neutral_photo))  # opened twice: the warning is still printed once
    qtbot.waitUntil(lambda: opened.engine.latest is not None, timeout=20000)
    assert capfd.readouterr().err.count("Cannot read the calibration") == 1
    again_line, again_err = calibrate_still(qtbot, opened, capfd)
    assert again_line == line and again_err == f"{line} Saved to {saved}.\n"  # one line, once
    qtbot.waitUntil(lambda: opened.calibration.section.state.text().startswith("Calibrated"), timeout=5000)
    assert "calibration" not in opened.notice.text().lower()
    assert opened.engine.latest.analysis.calibrated  # the still on screen is read with it


@needs(FERPLUS_ZIP)
def test_c_on_a_still_refuses_as_the_command_line_does(qtbot, store, capfd, tmp_path):
    """A turned face in a photo: the window says the line `moodtunes calibrate --source PHOTO` says, and saves
    nothing."""
    import subprocess
    import sys

    from conftest import ROOT

    with zipfile.ZipFile(FERPLUS_ZIP) as archive:
        face = cv2.imdecode(np.frombuffer(archive.read("FER2013Valid/fer0028680.png"), np.uint8), cv2.IMREAD_COLOR)
    photo = tmp_path / "turned.jpg"
    cv2.imwrite(str(photo), face_scene(face, dx=140, face_side=300))
    window = started(qtbot, store, source=photo)
    line, err = calibrate_still(qtbot, window, capfd)
    cli = subprocess.run([sys.executable, str(ROOT / "main.py"), "calibrate", "--source", str(photo), "--out",
                          str(tmp_path / "cal.json")], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and f"error: {line}" in cli.stderr
    assert not line.startswith("Calibrated") and err.count(line) == 1
    assert not saved_calibration_path().exists() and not (tmp_path / "cal.json").exists()
