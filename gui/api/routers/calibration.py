"""Capturing the neutral face of the person in front of the camera, and forgetting it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from emotion.calibration import CAPTURE_SECONDS, CalibrationError, delete_calibration
from emotion.live import LiveAnalysis
from emotion.pipeline import FrameAnalysis
from gui.api.errors import ApiError
from gui.api.models import Calibrated, CalibrationReset, errors
from gui.api.state import ServerState, ServerStateDep, require_live_source

CAPTURE_TIMEOUT_S = CAPTURE_SECONDS + 5  # the capture, plus a slow first frame (photos come one a second)
TASK_TIMEOUT_S = 5.0  # for the analysis thread to take up a task: it does so before its next frame

router = APIRouter()


@router.post("/calibrate", dependencies=[Depends(require_live_source)],
             summary=f"Hold a relaxed face for {CAPTURE_SECONDS:g} s: your neutral from then on",
             responses=errors({
                 404: "No live source", 409: "A capture is already running, or the source has ended",
                 422: "The capture is not one person's resting face, or the model cannot use a calibration: the line "
                      "says why and what to do",
                 503: "The live source stopped", 504: "The source gave no frames for the capture"}))
async def calibrate(state: ServerStateDep) -> Calibrated:
    """Capture the face in front of the camera for about 3 s as its neutral: ask the person to relax their
    face (mouth closed, no smile) and look at the camera first. Answers when the capture is over; a good
    one is saved (the config folder, or --calibration FILE) and used from then on."""
    live_analysis = running(state)
    if state.calibrating.locked():
        raise ApiError(409, "A calibration is already being captured; wait for it to finish.")
    async with state.calibrating:
        analysis = state.live.analysis
        before = analysis.calibration.number if analysis and analysis.calibration else 0
        path = state.calibration_path()
        live_analysis.submit(lambda pipeline: pipeline.start_calibration(save_to=path))
        analysis = await next_analysis(state, lambda a: bool(a.calibration and a.calibration.number > before
                                                             and a.calibration.state != "capturing"),
                                       CAPTURE_TIMEOUT_S, "the capture")
    if analysis is None:
        raise ApiError(503, f"The live source stopped during the capture: {state.live.error or 'it ended'}.")
    status = analysis.calibration
    if status.state == "failed":
        raise ApiError(422, status.message)
    state.live.calibration_note = ""
    await run_in_threadpool(state.use_calibration, status.calibration)
    return Calibrated(message=status.message, frames=status.calibration.frames)


@router.delete("/calibrate", summary="Forget that calibration (the saved file too)",
               responses=errors({409: "A capture is running", 504: "The live source is stuck"}))
async def forget_calibration(state: ServerStateDep) -> CalibrationReset:
    """Stop using the calibration, and delete the saved one."""
    if state.calibrating.locked():
        raise ApiError(409, "A calibration is being captured; wait for it to finish.")
    if state.live_analysis is not None and state.live_analysis.running:
        state.live_analysis.submit(lambda pipeline: pipeline.reset_calibration())
        await next_analysis(state, lambda a: not a.calibrated, TASK_TIMEOUT_S, "the reset")
    state.live.calibration_note = ""
    await run_in_threadpool(state.use_calibration, None)
    path = state.calibration_path()
    try:
        existed = delete_calibration(path)
    except CalibrationError as exc:
        raise ApiError(500, str(exc)) from exc
    return CalibrationReset(message=f"Calibration deleted: {path}." if existed
                            else f"No calibration was saved at {path}; none is used now.")


def running(state: ServerState) -> LiveAnalysis:
    """The live source's analysis, if it can still take work."""
    live_analysis, snapshot = state.live_analysis, state.live.snapshot()
    if snapshot.state == "failed":
        raise ApiError(503, f"The live source stopped: {snapshot.error}")
    if snapshot.state == "ended" or not live_analysis.running:
        raise ApiError(409, "The live source has ended: there is nothing left to capture (--loop keeps a video "
                            "playing).")
    return live_analysis


async def next_analysis(state: ServerState, ready: Callable[[FrameAnalysis], bool], timeout: float,
                        what: str) -> FrameAnalysis | None:
    """The newest analysis once ``ready`` holds for it (None if the source stops first); the event loop
    serves everyone else meanwhile. 504 after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        analysis = state.live.analysis
        if analysis is not None and ready(analysis):
            return analysis
        if not state.live_analysis.running:
            return None
        if time.monotonic() > deadline:
            raise ApiError(504, f"The live source gave no frames for {what} within {timeout:.0f} s.")
        await asyncio.sleep(0.05)
