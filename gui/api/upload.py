"""Reading an uploaded body within the size and time limits."""

from __future__ import annotations

import asyncio

from fastapi import Request

from gui.api.errors import ApiError
from gui.api.settings import ServeSettings


async def read_body(request: Request, settings: ServeSettings) -> bytes:
    """The request body, within the size limit and the time limit (a slow client cannot hold a worker)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        raise ApiError(413, f"The body is larger than {settings.max_upload_bytes // 2**20} MB.")
    chunks, size = [], 0

    async def receive_all() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_upload_bytes:
                raise ApiError(413, f"The body is larger than {settings.max_upload_bytes // 2**20} MB.")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive_all(), settings.body_timeout_s)
    except asyncio.TimeoutError as exc:  # TimeoutError itself from Python 3.11 on
        raise ApiError(408, f"The body did not arrive within {settings.body_timeout_s:.0f} s.") from exc
    if not size:
        raise ApiError(400, "Send an image (JPEG, PNG, ...) as the request body.")
    return b"".join(chunks)
