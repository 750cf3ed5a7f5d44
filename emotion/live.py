"""The read -> analyse loop over a frame source, and that loop on a thread of its own.

:func:`analysed_frames` is the one loop: ``--headless`` and ``moodtunes calibrate`` run it on
their own thread, :class:`LiveAnalysis` runs it on a thread for the window and the local API.
That thread owns its source: it opens, reads and closes it; other threads only ask it to stop,
or hand it work for the pipeline (:meth:`LiveAnalysis.submit`, e.g. start a calibration). It
hands out frozen :class:`~emotion.pipeline.FrameAnalysis` snapshots through callbacks, and
plays files at their own pace (photos one per second) unless the source says otherwise.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from emotion.errors import MoodtunesError
from emotion.pipeline import EmotionPipeline, FrameAnalysis
from emotion.sources import Frame, FrameSource, Warn

PipelineTask = Callable[[EmotionPipeline], None]


@dataclass(frozen=True)
class EngineInfo:
    device: str
    backend: str  # "onnxruntime", "opencv" or "torch"
    detector: str
    note: str  # why the detector is not the one asked for, or ""
    checkpoint: str
    source: str
    source_kind: str  # "camera", "video" or "photos"
    calibration_note: str = ""  # why a saved calibration is not used, or ""


@dataclass(frozen=True)
class Analysed:
    """One turn of the loop: the frame as read, its analysis, and how the loop is doing."""

    frame: Frame
    analysis: FrameAnalysis
    fps: float | None  # analysed frames per second, smoothed; None for photos
    read_ms: float  # how long the source took to give the frame


def analysed_frames(source: FrameSource, pipeline: EmotionPipeline, stop: threading.Event,
                    paused: threading.Event | None = None, paced: bool = True,
                    before_frame: Callable[[], None] = lambda: None) -> Iterator[Analysed]:
    """Read and analyse frames until the source ends or ``stop`` is set.

    ``paced``: play files at their own speed (a viewer) rather than as fast as possible (a
    benchmark); cameras pace themselves. ``before_frame`` runs before each analysis, on this
    thread. While ``paused`` is set nothing is read.
    """
    fps = 0.0
    last = None
    started_wall = started_media = None
    while not stop.is_set():
        if paused is not None and paused.is_set():
            stop.wait(0.05)
            started_wall = None  # re-anchor file playback after a pause
            continue
        t_read = time.perf_counter()
        item = source.read()
        read_ms = (time.perf_counter() - t_read) * 1000
        if item is None:
            return
        if paced and source.paced:
            now = time.monotonic()
            if started_wall is None:
                started_wall, started_media = now, item.timestamp
            delay = (item.timestamp - started_media) - (now - started_wall)
            if delay > 0 and stop.wait(delay):
                return
        before_frame()
        analysis = pipeline.process(item.image, item.timestamp, item.independent, item.name, item.reduction)
        now = time.monotonic()
        if last is not None:
            instant = 1.0 / max(now - last, 1e-6)
            fps = instant if fps == 0 else 0.9 * fps + 0.1 * instant
        last = now
        yield Analysed(item, analysis, None if source.kind == "photos" else fps, read_ms)


class LiveAnalysis:
    """Runs ``make_pipeline()`` over ``open_source(warn)`` until the source ends or :meth:`stop`.

    Callbacks run on the analysis thread: ``on_ready(EngineInfo)`` once, ``on_frame(Frame,
    FrameAnalysis, fps)`` per frame (fps is None for photos), ``on_warning(str)``,
    ``on_failed(str)`` (a one-line problem), ``on_finished(kind)`` when the source ends.
    """

    def __init__(
        self,
        open_source: Callable[[Warn], FrameSource],
        make_pipeline: Callable[[], EmotionPipeline],
        on_frame: Callable[[Frame, FrameAnalysis, float | None], None],
        on_ready: Callable[[EngineInfo], None] = lambda info: None,
        on_warning: Callable[[str], None] = lambda message: None,
        on_failed: Callable[[str], None] = lambda message: None,
        on_finished: Callable[[str], None] = lambda kind: None,
        name: str = "analysis",
    ) -> None:
        self._open_source, self._make_pipeline = open_source, make_pipeline
        self._on_frame, self._on_ready, self._on_warning = on_frame, on_ready, on_warning
        self._on_failed, self._on_finished = on_failed, on_finished
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._tasks: queue.SimpleQueue[PipelineTask] = queue.SimpleQueue()
        self._source: FrameSource | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    def submit(self, task: PipelineTask) -> None:
        """Run ``task(pipeline)`` on the analysis thread before its next frame (the pipeline is that thread's)."""
        self._tasks.put(task)

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the thread to end and wait up to ``timeout`` s; True if it ended in time.

        Only signals: the analysis thread itself closes its source, after its last read.
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
            source = self._open_source(self._on_warning)
            self._source = source
            if self._stop.is_set():
                return
            recognizer = pipeline.recognizer
            self._on_ready(EngineInfo(recognizer.device, recognizer.backend, recognizer.detector.name,
                                      recognizer.detector.note, recognizer.checkpoint_path.name, source.name,
                                      source.kind, recognizer.calibration_note))
            for turn in analysed_frames(source, pipeline, self._stop, self._paused, paced=True,
                                        before_frame=lambda: self._run_tasks(pipeline)):
                self._on_frame(turn.frame, turn.analysis, turn.fps)
            if not self._stop.is_set():
                self._on_finished(source.kind)
        except MoodtunesError as exc:
            if not self._stop.is_set():
                self._on_failed(str(exc))
        except Exception as exc:  # never let the thread die silently: whoever shows results shows this
            traceback.print_exc()
            self._on_failed(f"Unexpected error: {type(exc).__name__}: {exc}")
        finally:
            if source is not None:
                source.close()

    def _run_tasks(self, pipeline: EmotionPipeline) -> None:
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            task(pipeline)
