"""Request bodies: media types (415) and size limits (413 rather than reading an oversized
body)."""

from __future__ import annotations

import re

from starlette.requests import Request

from callhook.errors import PayloadTooLarge, UnsupportedMediaType

# RFC 9110 media type: type "/" subtype *( OWS ";" OWS parameter ); tokens are tchar.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"^\s*({_TCHARS})/({_TCHARS})\s*(;.*)?$", re.DOTALL)
_PARAMETER = re.compile(rf'^\s*({_TCHARS})=({_TCHARS}|"[^"\\]*")\s*$')
JSON_REQUIRED = "Content-Type must be application/json."


def is_json_media_type(value: str | None) -> bool:
    """Whether a ``Content-Type`` value names JSON: ``application/json`` or
    ``application/<anything>+json`` (case-insensitive), with well-formed parameters, a
    ``charset`` only if it is UTF-8 (RFC 8259: JSON exchanged between systems is UTF-8).
    A missing value is not JSON."""
    if value is None:
        return False
    match = _MEDIA_TYPE.match(value)
    if match is None:
        return False
    kind, subtype, params = match.group(1).lower(), match.group(2).lower(), match.group(3)
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    if subtype.endswith("+json") and len(subtype) == len("+json"):
        return False
    for param in (params or "").split(";")[1:]:
        if not param.strip():
            continue
        found = _PARAMETER.match(param)
        if found is None:
            return False
        name, raw = found.group(1).lower(), found.group(2).strip('"').lower()
        if name == "charset" and raw not in ("utf-8", "utf8"):
            return False
    return True


def require_json(request: Request) -> None:
    """``UnsupportedMediaType`` (415) unless the request's ``Content-Type`` is JSON. A request
    without one is read as JSON (RFC 9110 §8.3 leaves that to the recipient; clients that send
    a bare body, such as ``requests.post(url, data=text)``, keep working); any other declared
    type is refused."""
    declared = request.headers.get("content-type")
    if declared is not None and not is_json_media_type(declared):
        raise UnsupportedMediaType(JSON_REQUIRED)


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
