"""Reading request bodies with a size limit (413 rather than reading an oversized body)."""

from __future__ import annotations

from starlette.requests import Request

from callhook.errors import PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes without reading it all: a
    larger declared ``Content-Length`` is refused before reading. Read once per request; later
    calls return the same bytes."""
    cached: bytes | None = getattr(request.state, "body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body exceeds {limit // 1024} KiB.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds {limit // 1024} KiB.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request.state.body = body
    return body
