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


async def authenticate(request: Request, *, scope: str) -> Token:
    """The request's token, checked for ``scope``; 401/403 otherwise."""
    platform: Platform = request.app.state.platform
    token = await run_in_threadpool(_authenticate, platform, bearer(request))
    if scope not in token.scopes:
        raise PermissionDenied(f"This token lacks the required scope '{scope}'.")
    return token
