"""Start the moodtunes window (``python main.py``)."""

from __future__ import annotations

import argparse
import os
import sys

from emotion.errors import MoodtunesError


def run(args: argparse.Namespace) -> int:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        # Without this check Qt aborts the process with a core dump instead of an explanation.
        raise MoodtunesError("No display found (DISPLAY and WAYLAND_DISPLAY are unset): run moodtunes in a "
                             "desktop session, or use --headless / --benchmark.")
    try:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:  # e.g. a missing system library for Qt's platform plugin
        raise MoodtunesError(f"Cannot start the window ({exc}); see the README's Linux notes, "
                             "or use --headless.") from exc
    from gui.window import MainWindow, Options

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("moodtunes")
    app.setOrganizationName("moodtunes")
    options = Options(source=args.source, camera=args.camera, loop=args.loop, checkpoint=args.checkpoint,
                      device=args.device, backend=args.backend, detector=args.detector, face_model=args.face_model,
                      first_face_report=args.first_face_report, calibration=args.calibration,
                      no_calibration=args.no_calibration, resolution=args.resolution)
    window = MainWindow(options, QSettings())
    window.show()
    window.start()
    return app.exec()
