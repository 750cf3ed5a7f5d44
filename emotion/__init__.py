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

import importlib

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


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'emotion' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
