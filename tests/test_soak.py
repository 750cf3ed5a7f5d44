"""Hours of use in a minute: the real window, fed frames as fast as a camera-like source gives them.

A few seconds of video hid the Qt binding that aborted every window after ~150 s; this runs
the window through 20,000+ frames and checks that it stays alive and that neither memory,
Python objects nor the reference count of None drift.
"""

from __future__ import annotations

import gc
import sys

import psutil
import pytest
from clips import write_face_clip
from conftest import YUNET_TEST_MODEL, needs
from PySide6.QtCore import QEvent, QObject, QSettings

from emotion.recognizer import EmotionRecognizer
from emotion.settings import AppSettings
from emotion.sources import VideoFileSource
from gui.window import MainWindow

SOAK_FRAMES = 20_000
WARM_UP_FRAMES = 4_000


class PaintCounter(QObject):
    """Counts the frames a widget really painted (paint events showing a frame it had not painted yet)."""

    def __init__(self, view: QObject) -> None:
        super().__init__()
        self.view, self.painted, self._last = view, 0, None
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's naming)
        if event.type() == QEvent.Type.Paint and self.view.frame is not None:
            index = self.view.frame.analysis.index
            self.painted += index != self._last
            self._last = index
        return False  # the view still paints


@pytest.fixture
def small_clip(tmp_path):
    # Small frames and an untrained tiny network keep the inference cheap, so the window (what
    # is being tested) gets as many frames per second as the machine can paint.
    return write_face_clip(tmp_path / "small.avi", frames=240, fps=30, size=(192, 144))


@needs(YUNET_TEST_MODEL)  # YuNet finds the small face in every frame, at a sixth of Haar's cost
def test_window_survives_20000_frames_with_flat_memory(qtbot, tmp_path, small_clip, tiny_onnx):
    def unpaced(warn):
        # The worker reads the file itself, as fast as it can analyse it (tests/test_threads.py
        # covers the camera path, read continuously on its own thread).
        return VideoFileSource(small_clip, loop=True, warn=warn, paced=False)

    window = MainWindow(AppSettings(), QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        open_url=lambda url: None, make_source=unpaced,
                        make_recognizer=lambda: EmotionRecognizer(tiny_onnx, device="cpu",
                                                                  face_model=YUNET_TEST_MODEL))
    qtbot.addWidget(window)
    window.show()
    window.start()
    process = psutil.Process()
    paints = PaintCounter(window.view)

    def frames_done() -> int:
        return window.engine.latest.analysis.index + 1 if window.engine.latest else 0

    qtbot.waitUntil(lambda: frames_done() >= WARM_UP_FRAMES, timeout=300_000)
    gc.collect()
    rss_before, objects_before, none_before = process.memory_info().rss, len(gc.get_objects()), sys.getrefcount(None)
    qtbot.waitUntil(lambda: frames_done() >= SOAK_FRAMES, timeout=900_000)
    gc.collect()
    rss_after, objects_after, none_after = process.memory_info().rss, len(gc.get_objects()), sys.getrefcount(None)

    assert window.engine.worker.running and window.isVisible()
    assert window.engine.latest.analysis.faces, "the face should be found in the clip"
    assert paints.painted >= SOAK_FRAMES // 2, f"the window painted only {paints.painted} of {frames_done()} frames"
    growth_mb = (rss_after - rss_before) / 2**20
    assert growth_mb < 25, f"resident memory grew {growth_mb:.1f} MB over {SOAK_FRAMES - WARM_UP_FRAMES} frames"
    assert objects_after - objects_before < 2_000, f"{objects_after - objects_before} Python objects more"
    if sys.version_info < (3, 12):  # None is immortal from 3.12 on
        assert none_before - none_after < 100, f"{none_before - none_after} references to None were lost"
    window.close()
    assert not window.engine.worker.running
