"""moodtunes' emotion engine: faces in, emotions out.

    >>> from emotion import Calibration, EmotionRecognizer, read_image
    >>> recognizer = EmotionRecognizer()                 # the shipped model, best device, YuNet or Haar
    >>> for face in recognizer.analyze(read_image("photo.jpg")):
    ...     print(face.label, round(face.confidence, 2), face.box)

A personal neutral (a relaxed face that looks stern to the model is then read as neutral):

    >>> calibration = recognizer.calibrate([read_image("me_relaxed.jpg")], photos=True)
    >>> calibration.save("me.json")
    >>> recognizer = EmotionRecognizer(calibration=Calibration.load("me.json"))

For video, :class:`EmotionPipeline` adds tracking and the smoothed mood, and
:func:`open_source` reads a camera, a video file or a folder of photos.
"""

from __future__ import annotations

import os

from emotion.lazy import lazy_exports

# Private by default. ONNX Runtime, the CPU runtime of the emotion network, creates
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ when it is imported: a persistent device id and an
# event store of the process (OS, CPU, memory, Python path, network type) queued for upload. It
# reads ORT_DISABLE_TELEMETRY once, at import, so setting it when a session is created is too late,
# and every route to ONNX Runtime in moodtunes (the app, `python -m training.*`, `import emotion`)
# passes through this package first. It is the one global side effect of importing this package:
# a webcam app must not leave a tracking id behind. A user who set the variable keeps their value.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# Imported on first use (PEP 562), so that `from emotion.errors import MoodtunesError` does not
# load the model code, and so that the CPU path never pays for what it does not use.
_EXPORTS = {
    "Calibration": "emotion.calibration",
    "CalibrationError": "emotion.calibration",
    "EMOTIONS": "emotion.classes",
    "STYLES": "emotion.classes",
    "EmotionPipeline": "emotion.pipeline",
    "EmotionRecognizer": "emotion.recognizer",
    "FaceResult": "emotion.results",
    "FrameAnalysis": "emotion.pipeline",
    "Mood": "emotion.smoothing",
    "MoodTracker": "emotion.smoothing",
    "MoodtunesError": "emotion.errors",
    "open_source": "emotion.sources",
    "read_image": "emotion.sources",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
