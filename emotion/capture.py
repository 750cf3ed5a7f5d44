"""How long a calibration watches the face (``calibrate --seconds``, C, ``POST /calibrate``).

A module of its own, importing nothing: the engine, ``--help`` and the window's keys all read it, and
the last two must not load OpenCV (as ``emotion.calibration`` does) to say "3 s".
"""

CAPTURE_SECONDS = 3.0
