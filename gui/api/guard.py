"""Who may ask: loopback names only, the token, and no POSTs from other web pages."""

from __future__ import annotations

import hmac
import urllib.parse

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gui.api.settings import LOOPBACK_NAMES, ServeSettings

DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's files, served from the fastapi-offline package
# The documentation says nothing of the user's: it is open without the token, so that /docs
# can load its page, its files and the schema in a browser that cannot send a header.
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json", DOCS_ASSETS + "/")


class Guard:
    """ASGI middleware: loopback names only (when bound to loopback), the token (when one is set,
    except for the documentation), and no POSTs from other web origins. Refusals are JSON like
    every other answer."""

    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.problem(scope)
            if problem is not None:
                await JSONResponse({"error": problem[1]}, status_code=problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def problem(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not host.endswith("]"):  # "[::1]" has no port to drop
            host = host.rsplit(":", 1)[0]
        if self.settings.loopback and host not in LOOPBACK_NAMES:
            # DNS rebinding: a page at evil.example that resolves to 127.0.0.1 still sends its own name.
            return 400, f"This server answers requests for 127.0.0.1 or localhost only, not {host or 'no host'}."
        if self.settings.token and not scope["path"].startswith(DOCS_PATHS):
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or query.get("token", [""])[0]
            if not hmac.compare_digest(given.encode(), self.settings.token.encode()):
                return 401, "A token is needed: send Authorization: Bearer <token>, or ?token=<token>."
        origin = headers.get("origin")
        if scope["method"] == "POST" and origin and origin.split("://", 1)[-1] != headers.get("host"):
            return 403, "Requests from other web pages are refused."
        return None
