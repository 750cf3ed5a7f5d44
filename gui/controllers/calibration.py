"""Calibration in the window: C captures the person's neutral face on the analysis thread and saves it
where the next start finds it; Reset forgets it. Its banner is on the video, its state in the panel."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from emotion.calibration import (
    CAPTURE_SECONDS,
    Calibration,
    CalibrationError,
    CalibrationStatus,
    delete_calibration,
)
from emotion.cli import warn
from emotion.pipeline import EmotionPipeline
from gui.controllers.base import Controller, Entry
from gui.controllers.engine import OPEN_HINT, EngineController
from gui.keys import key_of
from gui.panel import CalibrationSection
from gui.workers import ViewFrame

CALIBRATE_PROMPT = "Hold a relaxed, neutral face and look at the camera..."
CALIBRATE_STILL = "Reading this photo as your neutral face..."
CALIBRATE_NEEDS_FRAMES = (f"Calibration watches your face for {CAPTURE_SECONDS:.0f} seconds: choose a camera in "
                          f"Video → Camera N, or open a video or a photo of your neutral face with {OPEN_HINT}.")


def deletion_problem(path: Path) -> str:
    """Delete the calibration file at ``path``; why it could not be, or "" (the window shows it, and goes on)."""
    try:
        delete_calibration(path)
    except CalibrationError as exc:
        return str(exc)
    return ""


class CalibrationController(Controller):
    def __init__(self, window: QObject, engine: EngineController, path: Path) -> None:
        super().__init__(window)
        self.engine, self.path = engine, path
        self.section = CalibrationSection()
        # The pipeline numbers its captures and reports the latest in every frame. Those numbered
        # up to this one are old news (shown already, or from before this C); None after a reset:
        # none is shown until the next C.
        self._seen_through: int | None = 0
        self.calibrate_action = QAction("&Calibrate", self, triggered=self.calibrate)
        self.calibrate_action.setToolTip(f"Calibrate ({key_of('calibrate')}): hold a relaxed, neutral face for "
                                         f"{CAPTURE_SECONDS:.0f} s, and your resting face reads as neutral from "
                                         "then on")
        self.reset_action = QAction("&Reset calibration", self, triggered=self.reset)
        engine.frame_shown.connect(self._frame_shown)
        engine.restarted.connect(self._restarted)
        engine.failed.connect(lambda _message: self._stop_capture("The calibration stopped: nothing is being "
                                                                  "analysed."))
        engine.source_ended.connect(self._source_ended)

    def actions(self) -> dict[str, Entry]:
        return {"calibrate": self.calibrate_action, "reset_calibration": self.reset_action}

    def calibrate(self) -> None:
        """C: capture the person's neutral face on the analysis thread, and save it where the next start finds it.

        A still (a photo, opened with --source or File → Open, looped or not) is judged alone and at once,
        as ``moodtunes calibrate --source PHOTO`` judges it (see EmotionPipeline): the same photo gets the
        same answer whichever way it came. A still shown already (its thread has ended) is read again.
        """
        engine = self.engine
        if engine.source_problem:  # the video says why in full
            self.section.show_result(f"{engine.short_problem}: nothing to calibrate on.")
            return
        running = engine.worker is not None and engine.worker.running
        still = engine.source_kind == "photos"
        if not running and not still:  # not started, or a video that ended
            self.section.show_result(CALIBRATE_NEEDS_FRAMES)
            return
        if engine.pause_action.isChecked():
            engine.pause_action.setChecked(False)  # the capture needs frames
        status = engine.latest.analysis.calibration if engine.latest and running else None
        self._seen_through = status.number if status else 0  # the result of an earlier capture is not this one's
        if running:
            engine.worker.submit(self._start_capture)
        else:
            engine.rerun(self._start_capture)
        self._prompt(CALIBRATE_STILL if still else CALIBRATE_PROMPT)

    def _prompt(self, message: str) -> None:
        self.section.show_capture(message, 0.0)
        self.engine.view.show_capture(message, 0.0)

    def _start_capture(self, pipeline: EmotionPipeline) -> None:  # on the analysis thread
        pipeline.start_calibration(save_to=self.path)

    def reset(self) -> None:
        """Stop using the calibration and delete its file, so that the next start does not load it."""
        path, worker = self.path, self.engine.worker
        self._seen_through = None  # a capture under way is cancelled: its status must not come back
        if worker is not None and worker.running:

            def forget(pipeline: EmotionPipeline) -> None:
                pipeline.reset_calibration()
                problem = deletion_problem(path)  # again: a capture that ended just before may have saved
                if problem:
                    worker.warning.emit(problem)

            worker.submit(forget)
        problem = deletion_problem(path)  # now, too: a paused or ended source runs no task
        self._end_capture(problem or "Calibration reset: your face is read by the model alone.")

    def _frame_shown(self, frame: ViewFrame) -> None:
        self.section.show_calibrated(frame.analysis.calibrated)
        self._show_capture(frame.analysis.calibration)

    def _show_capture(self, status: CalibrationStatus | None) -> None:
        if status is None or self._seen_through is None or status.number <= self._seen_through:
            return
        if status.state == "capturing":
            self.section.show_capture(status.message, status.progress)
            self.engine.view.show_capture(status.message, status.progress)
            return
        self._seen_through = status.number
        if status.state == "done":
            self.engine.calibrated()
            saved = f" Saved to {self.path}." if self._saved(status.calibration) else ""
            print(f"{status.message}{saved}", file=sys.stderr, flush=True)  # as `moodtunes calibrate` says it
        else:
            warn(status.message)
        self._end_capture(status.message)

    def _saved(self, calibration: Calibration | None) -> bool:
        """Whether the file holds ``calibration`` (the message says so when it could not be written)."""
        try:
            return Calibration.load(self.path) == calibration
        except CalibrationError:
            return False

    def _restarted(self) -> None:
        self._seen_through = 0  # the new pipeline numbers its captures from 1
        self.engine.view.show_capture(None)
        self.section.show_result("")  # the last source's capture is not this one's

    def _source_ended(self, kind: str) -> None:
        if kind == "photos" and self.engine.view.capture is not None:  # C came as the still's thread ended
            self.engine.rerun(self._start_capture)
            self._prompt(CALIBRATE_STILL)
            return
        self._stop_capture(f"The video ended before the {CAPTURE_SECONDS:.0f} seconds of the calibration: use the "
                           "camera or a longer video.")

    def _stop_capture(self, message: str) -> None:
        if self.engine.view.capture is not None:  # a capture was under way
            self._end_capture(message)

    def _end_capture(self, message: str) -> None:
        self.section.show_result(message)
        self.engine.view.show_capture(None)
