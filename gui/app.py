"""Start the moodtunes window (``python main.py``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from emotion.errors import MoodtunesError

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from emotion.settings import AppSettings


def run(settings: AppSettings) -> int:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        # Without this check Qt aborts the process with a core dump instead of an explanation.
        raise MoodtunesError("No display found (DISPLAY and WAYLAND_DISPLAY are unset): run moodtunes in a "
                             "desktop session, or use --headless / --benchmark.")
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:  # e.g. a missing system library for Qt's platform plugin
        raise MoodtunesError(f"Cannot start the window ({exc}); see the README's Linux notes, "
                             "or use --headless.") from exc
    from gui.settings import window_store
    from gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("moodtunes")
    app.setOrganizationName("moodtunes")
    window = MainWindow(settings, window_store())
    signals = CloseOnSignals(window)
    window.show()
    window.start()
    status = app.exec()
    # The window closed without waiting long for the analysis thread; the process must not end
    # under it (a thread still in OpenCV at exit aborts the process), which a loaded machine allows.
    window.engine.close(timeout=5.0)
    # 128 + the signal's number, as the headless run and shells report it: 130 Ctrl-C, 143 SIGTERM
    return 128 + signals.received[0] if signals.received else status


class CloseOnSignals:
    """Ctrl-C in the terminal (SIGINT) and SIGTERM close the window the way Q does: the camera
    released, the threads stopped, the settings saved; ``received`` lists the signals.

    Python runs its signal handlers only when the interpreter next gets control. In Qt's event loop
    that can be never (a paused window), or inside a paint event, where a KeyboardInterrupt is
    printed, swallowed, and the window stays open. So the C-level handler also writes the signal
    to a socket (``signal.set_wakeup_fd``) that Qt watches, and the Python side runs at once.
    Keep this object for as long as the event loop runs: it owns the sockets.
    """

    def __init__(self, window: QWidget) -> None:
        from PySide6.QtCore import QSocketNotifier

        self.window = window
        self.received: list[int] = []
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        signal.set_wakeup_fd(self._writer.fileno())
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: self.received.append(signum))
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, window)
        self._notifier.activated.connect(self._woken)

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._reader.recv(64)
        if self.received:
            self.window.close()
