"""Bearer-token authentication and scope checks for the HTTP API."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from callhook.errors import AuthenticationFailed, PermissionDenied
from callhook.platform import Platform
from callhook.store import tokens as token_store
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


def _authenticate(platform: Platform, plaintext: str) -> Token:
    with platform.db.write() as conn:
        return token_store.authenticate(conn, plaintext, now=platform.clock.now())


async def authenticate_token(request: Request) -> Token:
    """The request's active token (any scope); ``AuthenticationFailed`` (401) otherwise."""
    platform: Platform = request.app.state.platform
    return await run_in_threadpool(_authenticate, platform, bearer(request))


def require_scope(token: Token, scope: str) -> None:
    """``PermissionDenied`` (403) naming ``scope`` unless the token carries it."""
    if scope not in token.scopes:
        raise PermissionDenied(f"This token lacks the required scope '{scope}'.")


async def authenticate(request: Request, *, scope: str) -> Token:
    """The request's token, checked for ``scope``; 401/403 otherwise."""
    token = await authenticate_token(request)
    require_scope(token, scope)
    return token
