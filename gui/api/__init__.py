"""moodtunes' local HTTP API and live overlay page: ``moodtunes serve``.

    >>> from gui.api import ServeSettings, create_app, serve

``moodtunes serve --help`` lists the endpoints, as the routers in :mod:`gui.api.routers` declare
them (one router per topic; /docs shows each with its schemas).

It binds to 127.0.0.1 and answers only requests addressed to a loopback name (a web page cannot
reach it through DNS rebinding), and refuses POSTs from other web origins (a web page cannot
make playlists in your account). Another interface needs --host and a token, sent as
``Authorization: Bearer <token>`` or ``?token=<token>``. Bodies, pixels, body reads and
``/events`` listeners are limited; every error is JSON with a one-line ``error``, never a
traceback. The live source is opened once, on a thread of its own, and shared by every client.
"""

from __future__ import annotations

from emotion.lazy import lazy_exports

# Imported on first use (PEP 562): `main.py` reads ServeSettings' defaults for its options
# without loading FastAPI, which `moodtunes serve` alone needs (and which may not be installed).
_EXPORTS = {
    "LOOPBACK_NAMES": "gui.api.settings",
    "ServeSettings": "gui.api.settings",
    "create_app": "gui.api.app",
    "endpoints": "gui.api.app",
    "serve": "gui.api.run",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
