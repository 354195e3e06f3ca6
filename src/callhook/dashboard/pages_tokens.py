"""API tokens: create (shown once), list with last use, revoke.

Contracts
---------
* A new token's plaintext appears only in the response to the POST that created it (sent with
  ``Cache-Control: no-store``); only its SHA-256 and a short prefix are stored.
* Tokens are created for, listed for and revoked within the viewer's account only.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.core.ids import has_id_shape
from callhook.dashboard.auth import (
    CheckedForm,
    CurrentViewer,
    DashboardRoute,
    Viewer,
    platform_of,
    text,
    texts,
)
from callhook.dashboard.render import page
from callhook.errors import InvalidRequest, NotFound
from callhook.store import tokens as token_store

router = APIRouter(route_class=DashboardRoute)

#: Expiry choices offered by the form: (value, label, lifetime or None for "never").
EXPIRY_CHOICES: tuple[tuple[str, str, timedelta | None], ...] = (
    ("7", "7 days", timedelta(days=7)),
    ("30", "30 days", timedelta(days=30)),
    ("90", "90 days", timedelta(days=90)),
    ("365", "1 year", timedelta(days=365)),
    ("never", "Never", None),
)
SCOPE_DESCRIPTIONS = {
    "events.write": "Publish events (POST /internal/v1/events)",
    "webhooks.read": "Read the webhook setting, subscriptions and deliveries (API v2)",
    "webhooks.write": "Change subscriptions, redeliver and send test events (API v2)",
    "endpoints.write": "Add, change and delete endpoints, read and rotate their signing "
    "secrets (API v2)",
}


def _tokens_page(
    request: Request,
    who: Viewer,
    *,
    created: tuple[token_store.Token, str] | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    platform = platform_of(request)
    now = platform.clock.now()
    with platform.db.read() as conn:
        tokens = token_store.list_for(conn, who.account_id)
    return page(
        request,
        "tokens.html",
        {
            "tokens": [(t, t.active(now)) for t in tokens],
            "created": created,
            "errors": errors or {},
            "values": values or {"name": "", "scopes": [], "expires": "90"},
            "scopes": [(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in token_store.SCOPES],
            "expiry_choices": [(v, label) for v, label, _ in EXPIRY_CHOICES],
            "revoked": request.query_params.get("revoked") == "1",
        },
        status=status,
    )


@router.get("/tokens")
def tokens_page(request: Request, who: CurrentViewer) -> Response:
    return _tokens_page(request, who)


@router.post("/tokens")
def create_token(request: Request, who: CurrentViewer, form: CheckedForm) -> Response:
    platform = platform_of(request)
    name = text(form, "name", limit=200)
    scopes = texts(form, "scopes")
    expires = text(form, "expires")
    values: dict[str, object] = {"name": name, "scopes": scopes, "expires": expires}
    errors: dict[str, str] = {}
    lifetimes = {v: life for v, _, life in EXPIRY_CHOICES}
    if not name:
        errors["name"] = "Give the token a name, so you can tell it apart later."
    if expires not in lifetimes:
        errors["expires"] = "Choose when the token expires."
    try:
        token_store.parse_scopes(scopes)
    except InvalidRequest:
        errors["scopes"] = "Choose at least one scope."
    if errors:
        return _tokens_page(request, who, errors=errors, values=values, status=400)
    now = platform.clock.now()
    life = lifetimes[expires]
    with platform.db.write() as conn:
        created = token_store.create(
            conn,
            account_id=who.account_id,
            scopes=scopes,
            now=now,
            rng=platform.rng,
            name=name,
            expires_at=now + life if life is not None else None,
        )
    return _tokens_page(request, who, created=created)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, who: CurrentViewer, token_id: str, _f: CheckedForm) -> Response:
    platform = platform_of(request)
    if not has_id_shape("tok", token_id):  # nothing to look up (and no NUL for PostgreSQL)
        raise NotFound(f"no token {token_id!r}")
    with platform.db.write() as conn:
        token_store.revoke(conn, token_id, now=platform.clock.now(), account_id=who.account_id)
    return RedirectResponse("/dashboard/tokens?revoked=1", status_code=303)
