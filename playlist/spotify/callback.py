"""The loopback server that receives Spotify's redirect with the authorisation code.

Not spotipy's own (``start_local_http_server``): that one serves a single request with no
deadline, so a browser's preconnect or a closed tab leaves it waiting for ever, it listens on
127.0.0.1 only, and it tells the browser "authentication status: successful" before the code has
been exchanged for a token. This one cannot be stalled by idle connections, has a deadline, can
be cancelled, says in plain words why it cannot listen, and holds the browser's page until the
sign-in's outcome is known, so that the page tells the truth.
"""

from __future__ import annotations

import errno
import html
import http.server
import socket
import threading
import time
import urllib.parse

from playlist.spotify.errors import SignInCancelled, SpotifyError
from playlist.spotify_setup import README_SETUP, step_number

CALLBACK_CONNECTION_TIMEOUT_S = 5.0
# How long the browser's page waits for the token exchange: longer than the exchange's own request timeouts
# (connect and read, 10 s each), so that a page gives up only when moodtunes itself failed to report.
OUTCOME_WAIT_S = 25.0
PAGE_SENT_WAIT_S = 2.0  # a command line that exits right after the outcome still gets the page out


class CallbackServer(http.server.ThreadingHTTPServer):
    """Answers the redirect that brings the authorisation code back.

    Each connection is served on a thread of its own with a read timeout, so an idle or slow
    connection (a browser's speculative preconnect, a port scanner) cannot hold up the wait
    loop: the deadline and cancel are checked every 0.2 s whatever the connections do.
    """

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], path: str, state: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.expected_path, self.expected_state = path, state
        self.code: str | None = None
        self.error: str | None = None
        self.answered = threading.Event()
        self.outcome: str | None = None  # what the browser's page says once the sign-in is over
        self.outcome_known = threading.Event()
        self.page_sent = threading.Event()
        super().__init__(address, _CallbackHandler)
        self.timeout = 0.2  # handle_request() returns this often to check the deadline and cancel

    def wait(self, timeout: float, cancel: threading.Event | None, again: str, redirect_uri: str) -> str:
        deadline = time.monotonic() + timeout
        while not self.answered.is_set():
            if cancel is not None and cancel.is_set():
                raise SignInCancelled("Spotify sign-in was cancelled.")
            if time.monotonic() > deadline:
                # Spotify shows some refusals only in the browser; the commonest is the redirect URI.
                raise SignInCancelled(
                    f"Spotify sign-in did not finish within {timeout:.0f} s; {again} to try again. If Spotify's page "
                    f"said \"Invalid redirect URI\", add {redirect_uri} exactly under Redirect URIs in your app on "
                    f"developer.spotify.com (step {step_number('Redirect URIs')} of {README_SETUP}).")
            self.handle_request()
        if self.error is not None:
            raise SpotifyError(f"Spotify sign-in failed ({self.error}); {again} to try again.")
        return self.code

    def tell_browser(self, outcome: str) -> None:
        """Answer the browser that brought the code, now that the sign-in's outcome is known."""
        self.outcome = outcome
        self.outcome_known.set()
        self.page_sent.wait(PAGE_SENT_WAIT_S)

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        """A browser that drops the connection is no reason for a traceback."""


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """What to do when the callback server cannot listen on the redirect URI's address."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    other_port = ("another program uses it. Close that program, or pick another port: add "
                  "http://127.0.0.1:PORT/callback under Redirect URIs in your app on developer.spotify.com and set "
                  "SPOTIPY_REDIRECT_URI to the same address")
    if exc.errno == errno.EADDRINUSE:
        return f"Cannot wait for Spotify's sign-in on {where}: {other_port}."
    if host == "::1":
        return (f"Cannot listen on {where} ({exc.strerror}): this computer has no IPv6 loopback. Use "
                "http://127.0.0.1:8888/callback as the redirect URI, here and in the Spotify dashboard.")
    return f"Cannot listen on {where} for Spotify's sign-in ({exc.strerror}); {other_port}."


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: CallbackServer
    timeout = CALLBACK_CONNECTION_TIMEOUT_S

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        if url.path != self.server.expected_path:
            self._reply(404, "Not the moodtunes sign-in address.")
            return
        if params.get("state") != self.server.expected_state:
            self._reply(400, "This sign-in link is stale; go back to moodtunes and start again.")
            return
        if "error" in params:
            self.server.error = params["error"][:200]
            self._reply(200, f"Spotify sign-in failed: {params['error']}. You can close this tab.")
            self.server.answered.set()
        elif params.get("code"):
            self.server.code = params["code"]
            self.server.answered.set()
            # The code is not a sign-in yet: the page waits for moodtunes to exchange it and store the token.
            if self.server.outcome_known.wait(OUTCOME_WAIT_S):
                self._reply(200, self.server.outcome)
            else:
                self._reply(200, "moodtunes has not finished signing in to Spotify; it says whether it worked. "
                                 "You can close this tab.")
            self.server.page_sent.set()
        else:
            self._reply(400, "The redirect carried no authorisation code.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><meta charset=utf-8><title>moodtunes</title><p>{html.escape(text)}</p>".encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the browser went away first
            pass

    def log_message(self, format: str, *args) -> None:  # keep the code out of logs
        pass
