"""Start the moodtunes window (``python main.py``)."""

from __future__ import annotations

import argparse
import sys

from emotion.errors import MoodtunesError


def run(args: argparse.Namespace) -> int:
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
                      device=args.device, detector=args.detector, face_model=args.face_model)
    window = MainWindow(options, QSettings())
    window.show()
    window.start()
    return app.exec()
