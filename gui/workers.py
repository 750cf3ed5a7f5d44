"""Background work for the window: capture + inference, and playlist making.

Neither ever runs on the GUI thread. The analysis worker owns its source: it opens, reads
and closes it on its own thread, and hands the window frozen snapshots (a QImage copy and a
:class:`FrameAnalysis`). It keeps only its newest result: if the window is busy, older
frames are dropped instead of queueing up.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from emotion.errors import MoodtunesError
from emotion.pipeline import EmotionPipeline, FrameAnalysis
from emotion.preprocess import to_bgr
from emotion.sources import FrameSource, Warn


@dataclass(frozen=True)
class ViewFrame:
    image: QImage  # the frame as RGB, ready to paint; no other thread holds it
    analysis: FrameAnalysis  # frozen
    fps: float | None  # processed frames per second, smoothed; None for photos


@dataclass(frozen=True)
class EngineInfo:
    device: str
    backend: str  # "opencv" or "torch"
    detector: str
    note: str  # why the detector is not the one asked for, or ""
    checkpoint: str
    source: str
    source_kind: str  # "camera", "video" or "photos"


def to_qimage(frame: np.ndarray) -> QImage:
    rgb = cv2.cvtColor(to_bgr(frame), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the pixels


class AnalysisWorker(QObject):
    """Reads frames and analyses them on a thread of its own."""

    ready = Signal(object)  # EngineInfo, once the model and the source are open
    frame_ready = Signal()  # a new ViewFrame waits in take_latest()
    failed = Signal(str)  # a one-line problem (no camera, bad checkpoint, lost camera, ...)
    warning = Signal(str)  # a one-line note that does not stop the run (a skipped photo, a truncated video)
    finished = Signal(str)  # the source ended; its kind ("video" or "photos")

    def __init__(self, open_source: Callable[[Warn], FrameSource],
                 make_pipeline: Callable[[], EmotionPipeline]) -> None:
        super().__init__()
        self._open_source = open_source
        self._make_pipeline = make_pipeline
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._lock = threading.Lock()
        self._latest: ViewFrame | None = None
        self._source: FrameSource | None = None
        self._thread = threading.Thread(target=self._run, name="analysis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def take_latest(self) -> ViewFrame | None:
        with self._lock:
            latest, self._latest = self._latest, None
        return latest

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to end and wait up to ``timeout`` s; True if it ended in time.

        Only signals: the worker thread itself closes its source, after its last read.
        """
        self._stop.set()
        source = self._source
        if source is not None:
            source.interrupt()  # wakes a read that waits for a camera frame
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        source = None
        try:
            pipeline = self._make_pipeline()
            if self._stop.is_set():
                return
            source = self._open_source(self.warning.emit)
            self._source = source
            if self._stop.is_set():
                return
            recognizer = pipeline.recognizer
            self.ready.emit(EngineInfo(recognizer.device, recognizer.backend, recognizer.detector.name,
                                       recognizer.detector.note,
                                       recognizer.checkpoint_path.name, source.name, source.kind))
            self._loop(pipeline, source)
        except MoodtunesError as exc:
            if not self._stop.is_set():
                self.failed.emit(str(exc))
        except Exception as exc:  # never let a worker die silently: the window shows it
            traceback.print_exc()
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            if source is not None:
                source.close()

    def _loop(self, pipeline: EmotionPipeline, source: FrameSource) -> None:
        fps = 0.0
        last = None
        started_wall = started_media = None
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.05)
                started_wall = None  # re-anchor file playback after a pause
                continue
            item = source.read()
            if item is None:
                if not self._stop.is_set():
                    self.finished.emit(source.kind)
                return
            if source.paced:  # play files at their own speed, not as fast as possible
                now = time.monotonic()
                if started_wall is None:
                    started_wall, started_media = now, item.timestamp
                delay = (item.timestamp - started_media) - (now - started_wall)
                if delay > 0 and self._stop.wait(delay):
                    return
            analysis = pipeline.process(item.image, item.timestamp, item.independent, item.name)
            now = time.monotonic()
            if last is not None:
                instant = 1.0 / max(now - last, 1e-6)
                fps = instant if fps == 0 else 0.9 * fps + 0.1 * instant
            last = now
            view = ViewFrame(to_qimage(item.image), analysis, None if source.kind == "photos" else fps)
            with self._lock:
                self._latest = view
            self.frame_ready.emit()


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
                                open_url=self._open_url, show_link=self.sign_in_link.emit, again="press P")
        except NotConfigured as exc:
            self.failed.emit(str(exc), web_search_url(emotion))
        except MoodtunesError as exc:
            self.failed.emit(str(exc), "")
        except Exception as exc:  # shown in the window, never a crash
            traceback.print_exc()
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}", "")
        else:
            self.done.emit(result)
