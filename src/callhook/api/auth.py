"""Bearer-token authentication and scope checks for the HTTP API (ingest and API v2), with the
failed-authentication limits of ``callhook.api.ratelimit``."""

from __future__ import annotations

from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from callhook.api.ratelimit import RateLimits
from callhook.errors import AuthenticationFailed, PermissionDenied
from callhook.platform import Platform
from callhook.store import tokens as token_store
from callhook.store.db import Connection
from callhook.store.tokens import Token


def bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed(
            "Missing Authorization header. Use: Authorization: Bearer <token>."
        )
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip() or " " in value.strip():
        raise AuthenticationFailed(
            "Malformed Authorization header. Use: Authorization: Bearer <token>."
        )
    return value.strip()


class _Unknown:
    """No token has this hash."""


_UNKNOWN = _Unknown()


def _without_recording(conn: Connection, plaintext: str, now: datetime) -> Token | _Unknown | None:
    """The token, when it is valid and its last use is recent enough that
    ``token_store.authenticate`` would record nothing; ``_UNKNOWN`` when no token matches (or
    the string cannot be one); otherwise None (that function then decides: it raises the exact
    error, or records the use). Reads only."""
    token = token_store.find(conn, plaintext)
    if token is None:
        return _UNKNOWN
    last = token.last_used_at
    if not token.active(now) or last is None or now - last >= token_store._LAST_USED_RESOLUTION:
        return None
    return token


def authenticate_in(conn: Connection, plaintext: str, now: datetime) -> Token:
    """The active token for ``plaintext``, checked inside the caller's write transaction (the
    group commit of ingest: ``callhook.api.ingest``); records its use as
    ``token_store.authenticate`` does, and only when that would. ``AuthenticationFailed``
    otherwise, with that function's messages."""
    token = _without_recording(conn, plaintext, now)
    if isinstance(token, _Unknown):
        raise AuthenticationFailed("Invalid access token.")
    if token is not None:
        return token
    return token_store.authenticate(conn, plaintext, now=now)


def _authenticate(platform: Platform, plaintext: str) -> Token:
    """``token_store.authenticate``, in a read transaction when it would write nothing.

    Its write transaction took the database's write lock on every request, so each ingest
    request queued behind the publish being committed (on SQLite, 15-25 ms at 4 concurrent
    batches of 100, measured) before it even read its body. Now only the request that records
    a token's use (once a minute per token), or meets a revoked or expired one, writes; an
    unknown token is refused after the read (a guesser never takes the write lock).
    """
    with platform.db.read() as conn:
        token = _without_recording(conn, plaintext, platform.clock.now())
    if isinstance(token, _Unknown):
        raise AuthenticationFailed("Invalid access token.")
    if token is not None:
        return token
    with platform.db.write() as conn:
        return token_store.authenticate(conn, plaintext, now=platform.clock.now())


def limits_of(request: Request) -> RateLimits:
    """The app's limits (``app.state.rate_limits``), made from settings on first use."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        platform: Platform = request.app.state.platform
        limits = RateLimits.from_settings(platform.settings, platform.clock)
        request.app.state.rate_limits = limits
    return limits


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate_token(request: Request) -> Token:
    """The request's active token (any scope); ``AuthenticationFailed`` (401) otherwise.

    ``RateLimited`` (429) for a presented credential that already failed repeatedly from this
    client address (not looked up again), and instead of 401 while the address has failed too
    often lately; a valid token is always served (see ``callhook.api.ratelimit``). Requests
    presenting no credentials cost nothing and are not counted.
    """
    platform: Platform = request.app.state.platform
    presented = request.headers.get("authorization")
    if presented is None:
        bearer(request)  # raises: the header is missing
    assert presented is not None
    limits = limits_of(request)
    client = client_address(request)
    async with limits.credential(client, presented) as credential:
        try:
            token = await run_in_threadpool(_authenticate, platform, bearer(request))
        except AuthenticationFailed as exc:
            limited = credential.invalid()
            if limited is not None:
                raise limited from exc
            raise
        credential.valid()
    return token


def require_scope(token: Token, scope: str) -> None:
    """``PermissionDenied`` (403) naming ``scope`` unless the token carries it."""
    if scope not in token.scopes:
        raise PermissionDenied(f"This token lacks the required scope '{scope}'.")


async def authenticate(request: Request, *, scope: str) -> Token:
    """The request's token, checked for ``scope``; 401/403 otherwise."""
    token = await authenticate_token(request)
    require_scope(token, scope)
    return token
