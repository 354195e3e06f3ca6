"""The response envelope of spec 002, for success and error alike."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from callhook.core.clock import Clock, rfc3339_seconds

REQUEST_ID_HEADER = "X-Request-Id"


def request_id(request: Request) -> str:
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else "req_unknown"


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.platform.clock
    return clock


def success(request: Request, data: Any, *, status: int = 200) -> Response:
    """``{"status", "request_id", "timestamp", "data"}``."""
    body = {
        "status": status,
        "request_id": request_id(request),
        "timestamp": rfc3339_seconds(_clock(request).now()),
        "data": data,
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_body(
    *, status: int, errors: list[str], request_id: str, timestamp: str, path: str
) -> bytes:
    """``{"status", "errors": [...], "request_id", "timestamp", "path"}``."""
    return orjson.dumps(
        {
            "status": status,
            "errors": errors,
            "request_id": request_id,
            "timestamp": timestamp,
            "path": path,
        }
    )


def error(
    request: Request, status: int, errors: list[str], headers: dict[str, str] | None = None
) -> Response:
    body = error_body(
        status=status,
        errors=errors,
        request_id=request_id(request),
        timestamp=rfc3339_seconds(_clock(request).now()),
        path=request.url.path,
    )
    return Response(body, status_code=status, media_type="application/json", headers=headers)
