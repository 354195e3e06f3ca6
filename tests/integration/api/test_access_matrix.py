"""Every route × every kind of token: 401/403 as documented, and account B never sees or
changes account A's data, whichever route it calls."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from callhook.store import endpoints as endpoint_store
from callhook.store import tokens as token_store
from callhook.store.tables import (
    deliveries,
    endpoint_secrets,
    endpoint_subscriptions,
    endpoints,
    events,
)
from tests.factories import make_account, make_token, publish_sample
from tests.integration.api.helpers import BOTH, URL_B, Api, assert_error, running_api

READ, WRITE, EP_WRITE = "webhooks.read", "webhooks.write", "endpoints.write"
ALL = [*BOTH, EP_WRITE]
NEW_URL = "https://127.0.0.1:9443/new"

#: (method, path template, scope, JSON body). ``{dlv}``, ``{pbx}`` and ``{ep}`` (an endpoint
#: beside the primary one) are account A's.
ROUTES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v2/webhooks/available", READ, None),
    ("GET", "/api/v2/webhooks", READ, None),
    ("POST", "/api/v2/webhooks/outgoing_call_end", WRITE, None),
    ("DELETE", "/api/v2/webhooks/incoming_call_start", WRITE, None),
    ("GET", "/api/v2/webhooks/deliveries", READ, None),
    ("GET", "/api/v2/webhooks/deliveries/{dlv}", READ, None),
    ("POST", "/api/v2/webhooks/deliveries/{dlv}/redeliver", WRITE, None),
    ("POST", "/api/v2/webhooks/deliveries/redeliver", WRITE, {"since": "2026-01-01T00:00:00Z"}),
    ("POST", "/api/v2/webhooks/test", WRITE, None),
    ("GET", "/api/v2/webhooks/events/{pbx}", READ, None),
    ("GET", "/api/v2/webhooks/deliveries?endpoint_id={ep}", READ, None),
    ("GET", "/api/v2/endpoints", READ, None),
    ("POST", "/api/v2/endpoints", EP_WRITE, {"url": NEW_URL, "subscribed_events": ["sms"]}),
    ("GET", "/api/v2/endpoints/{ep}", READ, None),
    ("PATCH", "/api/v2/endpoints/{ep}", EP_WRITE, {"enabled": False, "url": NEW_URL}),
    ("DELETE", "/api/v2/endpoints/{ep}", EP_WRITE, None),
    ("GET", "/api/v2/endpoints/{ep}/secret", EP_WRITE, None),
    ("POST", "/api/v2/endpoints/{ep}/secret/rotate", EP_WRITE, None),
    ("POST", "/api/v2/endpoints/{ep}/test", WRITE, None),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _, _ in ROUTES]

TOKEN_KINDS = [
    "none",
    "malformed",
    "not_bearer",
    "unknown",
    "expired",
    "revoked",
    "platform",
    "wrong_scope",
    "other_account",
]


@dataclass
class World:
    api: Api
    tokens: dict[str, str | None]
    b_id: str
    dlv: str
    pbx: str
    ep: str
    ep_secret: str


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_api(tmp_path) as api:
        platform = api.platform
        published = publish_sample(platform, api.account.id, "incoming_call_start")
        assert published.delivery_id is not None
        with platform.db.write() as conn:  # a finished, failed delivery of account A
            conn.execute(update(deliveries).values(status="failed", next_attempt_at=None))
            _, expiring = token_store.create(
                conn,
                account_id=api.account.id,
                scopes=BOTH,
                now=platform.clock.now(),
                rng=platform.rng,
                expires_at=platform.clock.now() + timedelta(minutes=5),
            )
            revoked_token, revoked = token_store.create(
                conn,
                account_id=api.account.id,
                scopes=BOTH,
                now=platform.clock.now(),
                rng=platform.rng,
            )
            token_store.revoke(
                conn, revoked_token.id, now=platform.clock.now(), account_id=api.account.id
            )
        with platform.db.write() as conn:
            endpoint = endpoint_store.create(
                conn,
                api.account.id,
                url="https://127.0.0.1:9444/crm",
                subscribed_events=["incoming_call_end"],
                description="CRM",
                limit=20,
                allow_unsafe=True,
                now=platform.clock.now(),
                box=platform.box,
                rng=platform.rng,
            )
            [ep_secret] = endpoint_store.active_secrets(
                conn, api.account.id, endpoint.id, now=platform.clock.now(), box=platform.box
            )
        account_b = make_account(platform, url=URL_B, events=["sms"], name="Other Co")
        api.clock.advance(600)  # the expiring token has now expired
        tokens: dict[str, str | None] = {
            "none": None,
            "malformed": "Bearer",
            "not_bearer": "Basic dXNlcjpwYXNz",
            "unknown": "Bearer chk_" + "A" * 43,
            "expired": f"Bearer {expiring}",
            "revoked": f"Bearer {revoked}",
            "platform": f"Bearer {make_token(platform, None, [*ALL, 'events.write'])}",
            "wrong_scope:" + READ: f"Bearer {make_token(platform, api.account.id, [WRITE])}",
            "wrong_scope:" + WRITE: f"Bearer {make_token(platform, api.account.id, [READ])}",
            # Everything but endpoints.write: it is never implied by the other scopes.
            "wrong_scope:" + EP_WRITE: f"Bearer {make_token(platform, api.account.id, BOTH)}",
            "other_account": f"Bearer {make_token(platform, account_b.id, ALL)}",
        }
        yield World(
            api,
            tokens,
            account_b.id,
            published.delivery_id,
            published.pbx_id,
            endpoint.id,
            ep_secret.secret,
        )


def _snapshot(world: World) -> Any:
    """Everything of account A a request could change."""
    with world.api.platform.db.read() as conn:
        ep_ids = select(endpoints.c.id).where(endpoints.c.account_id == world.api.account.id)
        endpoint_rows = [
            tuple(r)
            for r in conn.execute(
                select(endpoints).where(endpoints.c.id.in_(ep_ids)).order_by(endpoints.c.id)
            )
        ]
        secret_rows = [
            tuple(r)
            for r in conn.execute(
                select(endpoint_secrets)
                .where(endpoint_secrets.c.endpoint_id.in_(ep_ids))
                .order_by(endpoint_secrets.c.id)
            )
        ]
        subscription_rows = [
            tuple(r)
            for r in conn.execute(
                select(endpoint_subscriptions)
                .where(endpoint_subscriptions.c.endpoint_id.in_(ep_ids))
                .order_by(endpoint_subscriptions.c.endpoint_id, endpoint_subscriptions.c.event)
            )
        ]
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.status, deliveries.c.next_attempt_at)
            .where(deliveries.c.account_id == world.api.account.id)
            .order_by(deliveries.c.id)
        ).all()
        n_events = len(
            conn.execute(
                select(events.c.id).where(events.c.account_id == world.api.account.id)
            ).all()
        )
    return (
        world.api.subscribed(),
        [tuple(r) for r in rows],
        n_events,
        endpoint_rows,
        secret_rows,
        subscription_rows,
    )


def _call(world: World, route: tuple[str, str, str, dict[str, Any] | None], kind: str) -> Any:
    method, template, scope, body = route
    path = template.format(dlv=world.dlv, pbx=world.pbx, ep=world.ep)
    header = world.tokens[f"{kind}:{scope}" if kind == "wrong_scope" else kind]
    headers = {} if header is None else {"Authorization": header}
    response = world.api.client.request(method, path, headers=headers, json=body)
    return path.partition("?")[0], response


@pytest.mark.parametrize("kind", TOKEN_KINDS)
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_route_by_token_kind(
    world: World, route: tuple[str, str, str, dict[str, Any] | None], kind: str
) -> None:
    before = _snapshot(world)
    path, response = _call(world, route, kind)
    scope = route[2]
    if kind in ("none", "malformed", "not_bearer", "unknown", "expired", "revoked"):
        assert_error(response, 401, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    elif kind == "platform":
        doc = assert_error(response, 403, path)
        assert "bound to no account" in doc["errors"][0]
    elif kind == "wrong_scope":
        doc = assert_error(response, 403, path)
        assert doc["errors"] == [f"This token lacks the required scope '{scope}'."]
    else:  # account B's token: its own account or "not found", never A's data
        assert response.status_code in (200, 201, 202, 404), response.text
        if "{dlv}" in route[1]:  # exactly what an id that never existed gets
            doc = assert_error(response, 404, path)
            assert doc["errors"] == [f"Delivery '{world.dlv}' not found."]
        elif "{ep}" in route[1]:
            doc = assert_error(response, 404, path)
            assert doc["errors"] == [f"Endpoint '{world.ep}' not found."]
        else:
            of_a = (world.dlv, world.api.account.id, "example.com/webhooks/sipsim", world.ep)
            for value in (*of_a, world.ep_secret, "127.0.0.1:9444/crm"):
                assert value not in response.text
    assert _snapshot(world) == before


def test_other_accounts_changes_land_on_its_own_account(world: World) -> None:
    headers = {"Authorization": str(world.tokens["other_account"])}
    client = world.api.client
    enabled = client.post("/api/v2/webhooks/outgoing_call_end", headers=headers).json()["data"]
    assert enabled == {
        "webhook_url": URL_B,
        "enabled": True,
        "subscribed_events": ["outgoing_call_end", "sms"],
    }
    assert world.api.subscribed(world.b_id) == ("outgoing_call_end", "sms")
    listed = client.get("/api/v2/webhooks/deliveries", headers=headers).json()["data"]
    assert listed == {"deliveries": [], "next_cursor": None}


def test_other_accounts_endpoints_land_on_its_own_account(world: World) -> None:
    headers = {"Authorization": str(world.tokens["other_account"])}
    client = world.api.client
    body = {"url": NEW_URL, "subscribed_events": ["sms"]}
    created = client.post("/api/v2/endpoints", headers=headers, json=body).json()["data"]
    listed = client.get("/api/v2/endpoints", headers=headers).json()["data"]
    assert [e["url"] for e in listed] == [URL_B, NEW_URL]
    assert listed[1] == created
    with world.api.platform.db.read() as conn:
        of_b = endpoint_store.list_for_account(conn, world.b_id)
        of_a = endpoint_store.list_for_account(conn, world.api.account.id)
    assert [e.id for e in of_b][1:] == [created["id"]]
    assert created["id"] not in {e.id for e in of_a}
