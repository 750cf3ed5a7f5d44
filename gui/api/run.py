"""Running the API on a socket until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

import uvicorn

from emotion.errors import MoodtunesError
from emotion.recognizer import EmotionRecognizer
from emotion.sources import FrameSource, Warn
from gui.api.app import create_app
from gui.api.routers.calibration import CAPTURE_TIMEOUT_S
from gui.api.settings import ServeSettings
from gui.api.state import ServerState


class Terminated(Exception):
    """SIGTERM arrived: stop as Ctrl-C stops."""


class Server(uvicorn.Server):
    """uvicorn's server, which also ends the /events streams when a signal stops it: they never end by
    themselves, and would hold the shutdown open for all its grace period."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.state.stopping = True


def listen(settings: ServeSettings) -> socket.socket:
    """The server's socket, bound before anything is printed: a port in use is one error line."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise MoodtunesError(f"Port {settings.port} is already in use (another moodtunes serve?): choose "
                                 "another with --port.") from None
        raise MoodtunesError(f"Cannot listen on {settings.host} port {settings.port} ({exc.strerror or exc}): "
                             "check --host and --port.") from None
    return sock


def terminated(signum: int, frame: FrameType | None) -> NoReturn:
    raise Terminated


def serve(settings: ServeSettings, make_recognizer: Callable[[], EmotionRecognizer],
          open_source: Callable[[Warn], FrameSource] | None) -> int:
    """Run the API until Ctrl-C (exit status 130) or SIGTERM (143): both answer the requests in flight
    (a calibration's capture included), end the /events streams and release the live source first.

    uvicorn handles both signals while it serves, shuts down, then raises the signal again for the
    handler it found: Python's raises KeyboardInterrupt for SIGINT, this module's raises Terminated
    for SIGTERM (the default handler would end the process by the signal, with no exit status)."""
    listening = listen(settings)
    app = create_app(settings, make_recognizer, open_source)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    port = listening.getsockname()[1]  # --port 0: the one the system chose
    print(f"moodtunes API on http://{host}:{port}/ (the overlay page; /docs lists the endpoints). "
          "Ctrl-C stops it.", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=CAPTURE_TIMEOUT_S,
                            timeout_keep_alive=5, limit_concurrency=settings.max_listeners + 32)
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        Server(config, app.state.server).run(sockets=[listening])
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Terminated:
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        listening.close()
    return 0
