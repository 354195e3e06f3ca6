"""The primary endpoint's pages: webhook settings, the signing secret and the test event.

The primary endpoint is spec 002's webhook setting; its pages keep their addresses
(``/dashboard/webhook``, ``/dashboard/secret``, ``/dashboard/test``) and are the same pages as
any other endpoint's (``pages_endpoints``), with its URL editable here only.

Contracts
---------
* Saving settings vets the URL first (:func:`callhook.delivery.resolver.check_url`: HTTPS,
  well-formed, resolving only to public addresses) and checks every other field; any problem
  re-renders the form with the message next to its field and stores nothing. Otherwise URL,
  description, enabled, retry policy and subscriptions are written in one transaction.
* The signing secrets appear in clear only in the response to an explicit "Reveal" or "Rotate"
  (a POST with the CSRF token, sent with ``Cache-Control: no-store``).
* "Send test event" publishes ``test`` to one endpoint and waits (up to the delivery timeout
  plus a second) for its first attempt before redirecting to the result page, which shows the
  attempt, the exact request (headers as sent, body) and a hint when it failed.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from callhook.core.ids import has_id_shape
from callhook.dashboard import hints
from callhook.dashboard.auth import CheckedForm, CurrentViewer, DashboardRoute, platform_of
from callhook.dashboard.pages_endpoint_tools import secret_page, send_test_to
from callhook.dashboard.pages_endpoints import EndpointForm, endpoint_page, save
from callhook.dashboard.render import page
from callhook.errors import NotFound
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store.endpoints import Endpoint

router = APIRouter(route_class=DashboardRoute)


def primary(platform: Platform, account_id: str) -> Endpoint:
    """The account's primary endpoint, created (without URL, with a secret) when missing."""
    with platform.db.write() as conn:
        return endpoint_store.create_primary(
            conn, account_id, now=platform.clock.now(), box=platform.box, rng=platform.rng
        )


@router.get("/webhook")
def webhook_page(request: Request, who: CurrentViewer) -> Response:
    endpoint = primary(platform_of(request), who.account_id)
    return endpoint_page(request, who.account_id, endpoint, EndpointForm.of(endpoint))


@router.post("/webhook")
async def save_webhook(request: Request, who: CurrentViewer, posted: CheckedForm) -> Response:
    endpoint = await run_in_threadpool(primary, platform_of(request), who.account_id)
    return await save(request, who.account_id, endpoint, posted)


# --- Signing secret ------------------------------------------------------------------------------
@router.get("/secret")
def secret(request: Request, who: CurrentViewer) -> Response:
    endpoint = primary(platform_of(request), who.account_id)
    return secret_page(request, who.account_id, endpoint, reveal=False)


@router.post("/secret/reveal")
def reveal_secret(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    endpoint = primary(platform_of(request), who.account_id)
    return secret_page(request, who.account_id, endpoint, reveal=True)


@router.post("/secret/rotate")
def rotate_secret(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    platform = platform_of(request)
    endpoint = primary(platform, who.account_id)
    with platform.db.write() as conn:
        endpoint_store.rotate_secret(
            conn,
            who.account_id,
            endpoint.id,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
    return secret_page(request, who.account_id, endpoint, reveal=True, rotated=True)


# --- Test event ---------------------------------------------------------------------------------
@router.post("/test")
async def send_test(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    endpoint = await run_in_threadpool(primary, platform_of(request), who.account_id)
    return await send_test_to(request, who.account_id, endpoint)


def request_headers(raw: str | None) -> list[tuple[str, str]]:
    """An attempt's stored request headers as (name, value) pairs, in sending order."""
    if not raw:
        return []
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(parsed, dict):
        return []
    return [(str(k), str(v)) for k, v in parsed.items()]


@router.get("/test/{delivery_id}")
def test_result(request: Request, who: CurrentViewer, delivery_id: str) -> Response:
    platform = platform_of(request)
    if not has_id_shape("dlv", delivery_id):  # nothing to look up (and no NUL for PostgreSQL)
        raise NotFound(f"Delivery '{delivery_id}' not found.")
    with platform.db.read() as conn:
        delivery = delivery_store.get(conn, delivery_id, account_id=who.account_id)
        endpoint = endpoint_store.get(conn, who.account_id, delivery.endpoint_id)
    last = delivery.attempt_log[-1] if delivery.attempt_log else None
    return page(
        request,
        "test.html",
        {
            "delivery": delivery,
            "attempt": last,
            "url": endpoint.url,
            "endpoint": endpoint,
            "test_url": "/dashboard/test"
            if endpoint.primary
            else f"/dashboard/endpoints/{endpoint.id}/test",
            "headers": request_headers(last.request_headers) if last else [],
            "body": (delivery.body or b"").decode("utf-8", "replace"),
            "hint": hints.hint(
                last.error_class if last else None, timeout=platform.settings.delivery_timeout
            ),
            "error_label": hints.label(last.error_class if last else None),
            "waiting": last is None,
        },
    )
