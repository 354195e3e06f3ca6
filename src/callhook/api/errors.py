"""The one place where errors become HTTP responses (all in the spec 002 envelope)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from callhook import errors
from callhook.api.envelope import error, error_body
from callhook.api.routing import allowed_methods
from callhook.events.models import pattern_rule

log = logging.getLogger("callhook.api")

#: Most specific first.
STATUS: tuple[tuple[type[errors.CallhookError], int], ...] = (
    (errors.UnknownEvent, 400),
    (errors.PrimaryEndpointUrl, 400),
    (errors.InvalidRequest, 400),
    (errors.UnsafeURL, 400),
    (errors.AuthenticationFailed, 401),
    (errors.PermissionDenied, 403),
    (errors.EndpointNotFound, 404),
    (errors.NotFound, 404),
    (errors.RequestTimeout, 408),
    (errors.EndpointLimitReached, 409),
    (errors.DuplicateEndpointUrl, 409),
    (errors.PrimaryEndpointDelete, 409),
    (errors.Conflict, 409),
    (errors.PayloadTooLarge, 413),
    (errors.URITooLong, 414),
    (errors.UnsupportedMediaType, 415),
    (errors.PayloadInvalid, 422),
    (errors.RateLimited, 429),
    (errors.HeadersTooLarge, 431),
    (errors.Unavailable, 503),
)

_HTTP_MESSAGES = {
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    431: "Request header fields too large.",
}


def status_for(exc: errors.CallhookError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _count(request: Request, status: int) -> None:
    platform = getattr(request.app.state, "platform", None)
    if platform is not None:
        platform.metrics.rejected.labels(str(status)).inc()


def _log_rejection(request: Request, status: int, message: str) -> None:
    # Never the Authorization header or the body: they may hold tokens and customer data.
    log.info(
        "request rejected",
        extra={
            "status": status,
            "method": request.method,
            "path": request.url.path,
            "error": message,
            "request_id": request.scope.get("state", {}).get("request_id"),
            "client": request.client.host if request.client else None,
        },
    )


async def on_callhook_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CallhookError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited | errors.Unavailable):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    _count(request, status)
    _log_rejection(request, status, exc.message)
    return error(request, status, [exc.message], headers or None)


_LOCATIONS = frozenset({"body", "query", "path"})


def _validation_message(err: Mapping[str, Any]) -> str:
    # A pattern in words (``events.models.pattern_rule``): pydantic's message quotes the regex.
    if err.get("type") == "string_pattern_mismatch":
        return pattern_rule((err.get("ctx") or {}).get("pattern"))
    return str(err.get("msg", "invalid"))


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    messages = []
    for err in exc.errors():
        # The parameter's own name, as our own checks say it (``limit``, not ``query.limit``).
        loc = [str(p) for p in err.get("loc", ())]
        where = ".".join(loc[1:] if loc and loc[0] in _LOCATIONS else loc)
        message = _validation_message(err)
        messages.append(f"{where}: {message}" if where else message)
    _count(request, 422)
    _log_rejection(request, 422, "; ".join(messages))
    return error(request, 422, messages or ["Invalid request."])


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code) or str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Every method some route serves at this path, not only the first route's.
        allowed = allowed_methods(request.app.router.routes, request.scope)
        headers["Allow"] = ", ".join(allowed)
    _count(request, exc.status_code)
    _log_rejection(request, exc.status_code, message)
    return error(request, exc.status_code, [message], headers or None)


def edge_response(
    exc: errors.CallhookError,
    *,
    path: str,
    timestamp: str,
    request_id: str,
    client: str | None,
    count: Callable[[int, str, str], None] | None = None,
) -> bytes:
    """A whole HTTP/1.1 response (envelope, ``Connection: close``) for an error the HTTP edge
    answers before or instead of the application (``callhook.api.edge``); logged and counted
    like the application's rejections."""
    status = status_for(exc)
    body = error_body(
        status=status, errors=[exc.message], request_id=request_id, timestamp=timestamp, path=path
    )
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("connection", "close"),
        ("x-request-id", request_id),
    ]
    if isinstance(exc, errors.RateLimited | errors.Unavailable):
        headers.append(("retry-after", str(max(1, math.ceil(exc.retry_after)))))
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    log.info(
        "request rejected",
        extra={
            "status": status,
            "path": path,
            "error": exc.message,
            "request_id": request_id,
            "client": client,
        },
    )
    if count is not None:
        count(status, path, exc.message)
    return head.encode("latin-1") + b"\r\n" + body


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away (or the HTTP edge cut it off) while the body was being read:
    nothing can be answered, nothing was done."""
    log.info(
        "client disconnected before the request was read",
        extra={"method": request.method, "path": request.url.path},
    )
    return Response(status_code=400)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    _count(request, 500)
    return error(request, 500, ["Internal server error."])


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.CallhookError, on_callhook_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(Exception, on_unexpected)
