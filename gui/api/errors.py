"""Every error the API answers: JSON with a one-line ``error``, never a traceback."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """An answer with a status and a one-line message."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.extra = status, extra


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(int(exc.extra.pop("retry_after")))} if exc.extra.get("retry_after") else None
    return JSONResponse({"error": str(exc), **exc.extra}, status_code=exc.status, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = {404: f"No such endpoint: {request.url.path}. See /docs.",
               405: f"{request.method} is not allowed on {request.url.path}."}.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
    return JSONResponse({"error": f"Invalid request: {problems}."}, status_code=400)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # One line for whoever runs the server, with where it happened: a traceback per request would
    # bury the server's output when a client repeats what fails. The client gets one line too.
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    message = " ".join(str(exc).split())  # on one line whatever the exception says
    print(f"error: {request.method} {request.url.path} failed{place}: {type(exc).__name__}: {message}",
          file=sys.stderr, flush=True)
    return JSONResponse({"error": f"Internal error ({type(exc).__name__}); see the server's output."}, status_code=500)


EXCEPTION_HANDLERS = {ApiError: api_error, StarletteHTTPException: http_error,
                      RequestValidationError: invalid_request, Exception: unexpected_error}
