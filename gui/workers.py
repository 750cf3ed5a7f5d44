"""Background work for the window: capture + inference, and playlist making.

Neither ever runs on the GUI thread. The analysis thread owns its source and its pipeline:
it opens, reads and closes the source, runs the pipeline (the window hands it work for the
pipeline, such as a calibration, through ``submit``), and hands the window frozen snapshots
(a QImage copy and a FrameAnalysis).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from emotion.errors import MoodtunesError
from emotion.live import EngineInfo, LiveAnalysis, PipelineTask
from emotion.pipeline import EmotionPipeline, FrameAnalysis
from emotion.preprocess import to_bgr
from emotion.sources import Frame, FrameSource, Warn
from gui.keys import key_of

__all__ = ["AnalysisWorker", "EngineInfo", "PlaylistWorker", "ViewFrame", "to_qimage"]


@dataclass(frozen=True)
class ViewFrame:
    image: QImage  # the frame as RGB, ready to paint; no other thread holds it
    analysis: FrameAnalysis  # frozen
    fps: float | None  # processed frames per second, smoothed; None for photos


def to_qimage(frame: np.ndarray) -> QImage:
    rgb = cv2.cvtColor(to_bgr(frame), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the pixels


class AnalysisWorker(QObject):
    """:class:`~emotion.live.LiveAnalysis` for the window: its callbacks become Qt signals.

    It keeps only its newest result: if the window is busy, older frames are dropped instead
    of queueing up.
    """

    ready = Signal(object)  # EngineInfo, once the model and the source are open
    frame_ready = Signal()  # a new ViewFrame waits in take_latest()
    failed = Signal(str)  # a one-line problem (no camera, bad checkpoint, lost camera, ...)
    warning = Signal(str)  # a one-line note that does not stop the run (a skipped photo, a truncated video)
    finished = Signal(str)  # the source ended; its kind ("video" or "photos")

    def __init__(self, open_source: Callable[[Warn], FrameSource],
                 make_pipeline: Callable[[], EmotionPipeline]) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._latest: ViewFrame | None = None
        self._live = LiveAnalysis(open_source, make_pipeline, self._frame, on_ready=self.ready.emit,
                                  on_warning=self.warning.emit, on_failed=self.failed.emit,
                                  on_finished=self.finished.emit)

    def _frame(self, item: Frame, analysis: FrameAnalysis, fps: float | None) -> None:
        view = ViewFrame(to_qimage(item.image), analysis, fps)
        with self._lock:
            self._latest = view
        self.frame_ready.emit()

    def start(self) -> None:
        self._live.start()

    def set_paused(self, paused: bool) -> None:
        self._live.set_paused(paused)

    def submit(self, task: PipelineTask) -> None:
        """Run ``task(pipeline)`` on the analysis thread before its next frame: the pipeline is that thread's."""
        self._live.submit(task)

    @property
    def paused(self) -> bool:
        return self._live.paused

    @property
    def running(self) -> bool:
        return self._live.running

    def take_latest(self) -> ViewFrame | None:
        with self._lock:
            latest, self._latest = self._latest, None
        return latest

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the analysis thread to end and wait up to ``timeout`` s; True if it ended in time."""
        return self._live.stop(timeout)


class PlaylistWorker(QObject):
    """Runs make_playlist (sign-in, searches, creation) on a thread of its own."""

    progress = Signal(str)
    sign_in_link = Signal(str)  # Spotify's sign-in page, shown while the sign-in waits
    done = Signal(object)  # PlaylistResult
    failed = Signal(str, str)  # message, fallback URL ("" if none)

    def __init__(self, make: Callable, open_url: Callable[[str], object]) -> None:
        super().__init__()
        self._make = make
        self._open_url = open_url
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, emotion: str, confidence: float, strategy: str) -> None:
        self._cancel.clear()
        self._thread = threading.Thread(target=self._run, args=(emotion, confidence, strategy), name="playlist",
                                        daemon=True)
        self._thread.start()

    def cancel(self, timeout: float = 0.5) -> None:
        self._cancel.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self, emotion: str, confidence: float, strategy: str) -> None:
        from playlist.make import web_search_url
        from playlist.spotify import NotConfigured

        try:
            result = self._make(emotion, confidence, strategy, progress=self.progress.emit, cancel=self._cancel,
                                open_url=self._open_url, show_link=self.sign_in_link.emit,
                                again=f"press {key_of('playlist')}")
        except NotConfigured as exc:
            self.failed.emit(str(exc), web_search_url(emotion))
        except MoodtunesError as exc:
            self.failed.emit(str(exc), "")
        except Exception as exc:  # shown in the window, never a crash
            traceback.print_exc()
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}", "")
        else:
            self.done.emit(result)
