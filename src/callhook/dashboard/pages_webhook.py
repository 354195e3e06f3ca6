"""Webhook settings, the signing secret and the test event.

Contracts
---------
* Saving settings vets the URL first (:func:`callhook.delivery.resolver.check_url`: HTTPS,
  well-formed, resolving only to public addresses) and checks every other field; any problem
  re-renders the form with the message next to its field and stores nothing. Otherwise URL,
  enabled, retry policy and subscriptions are written in one transaction.
* The signing secrets appear in clear only in the response to an explicit "Reveal" or "Rotate"
  (a POST with the CSRF token, sent with ``Cache-Control: no-store``).
* "Send test event" publishes ``test`` and waits (up to the delivery timeout plus a second)
  for its first attempt before redirecting to the result page, which shows the attempt, the
  exact request (headers as sent, body) and a hint when it failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.core.ids import has_id_shape
from callhook.core.retry import RETRY_POLICIES, RetryPolicy
from callhook.dashboard import hints
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
from callhook.delivery.resolver import check_url
from callhook.errors import NotFound, UnsafeURL
from callhook.events import DESCRIPTIONS, EVENT_GROUPS, SUBSCRIBABLE_EVENTS
from callhook.platform import Platform
from callhook.publish import send_test_event
from callhook.store import deliveries as delivery_store
from callhook.store import integrations as integration_store
from callhook.store.integrations import ROTATION_OVERLAP

router = APIRouter(route_class=DashboardRoute)

_SAVED = {"1": "Webhook settings saved."}


@dataclass
class SettingsForm:
    """What the settings form shows: stored values, or what was just submitted."""

    url: str = ""
    enabled: bool = True
    retry_policy: str = RetryPolicy.EXPONENTIAL
    events: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)


def _stored(platform: Platform, account_id: str) -> tuple[SettingsForm, bool]:
    with platform.db.read() as conn:
        integration = integration_store.get(conn, account_id)
    if integration is None:
        return SettingsForm(), False
    return (
        SettingsForm(
            url=integration.url or "",
            enabled=integration.enabled,
            retry_policy=integration.retry_policy,
            events=set(integration.subscribed_events),
        ),
        integration.configured,
    )


def _settings_page(
    request: Request, form: SettingsForm, *, configured: bool, status: int = 200
) -> Response:
    groups = [
        (name, [(e, DESCRIPTIONS[e], e in form.events) for e in events])
        for name, events in EVENT_GROUPS
    ]
    return page(
        request,
        "webhook.html",
        {
            "form": form,
            "groups": groups,
            "policies": RETRY_POLICIES,
            "configured": configured,
            "saved": _SAVED.get(request.query_params.get("saved", "")),
            "event_count": len(SUBSCRIBABLE_EVENTS),
        },
        status=status,
    )


@router.get("/webhook")
def webhook_page(request: Request, who: CurrentViewer) -> Response:
    form, configured = _stored(platform_of(request), who.account_id)
    return _settings_page(request, form, configured=configured)


@router.post("/webhook")
async def save_webhook(request: Request, who: CurrentViewer, posted: CheckedForm) -> Response:
    platform = platform_of(request)
    form = SettingsForm(
        url=text(posted, "url", limit=4096),
        enabled=text(posted, "enabled") == "on",
        retry_policy=text(posted, "retry_policy"),
        events=set(texts(posted, "events")),
    )
    preset = text(posted, "events_preset")
    _, configured = await run_in_threadpool(_stored, platform, who.account_id)
    if preset in ("all", "none"):
        # The no-JavaScript "select all / none": show the boxes changed, save nothing yet.
        form.events = set(SUBSCRIBABLE_EVENTS) if preset == "all" else set()
        return _settings_page(request, form, configured=configured)

    normalized = ""
    if not form.url:
        form.errors["url"] = "Enter the HTTPS URL of your endpoint."
    else:
        try:
            vetted = await check_url(form.url, allow_unsafe=platform.settings.allow_unsafe_targets)
            normalized = vetted.url
        except UnsafeURL as exc:
            form.errors["url"] = exc.message
    if form.retry_policy not in RETRY_POLICIES:
        form.errors["retry_policy"] = "Choose a retry policy."
    unknown = sorted(form.events - set(SUBSCRIBABLE_EVENTS))
    if unknown:
        form.errors["events"] = f"Unknown event(s): {', '.join(unknown)}."
    if form.errors:
        return _settings_page(request, form, configured=configured, status=400)

    await run_in_threadpool(_save, platform, who.account_id, form, normalized)
    return RedirectResponse("/dashboard/webhook?saved=1", status_code=303)


def _save(platform: Platform, account_id: str, form: SettingsForm, url: str) -> None:
    now = platform.clock.now()
    with platform.db.write() as conn:
        integration_store.set_url(
            conn, account_id, url, now=now, box=platform.box, rng=platform.rng
        )
        integration_store.set_enabled(conn, account_id, form.enabled, now=now)
        integration_store.set_retry_policy(conn, account_id, form.retry_policy, now=now)
        integration_store.set_subscriptions(
            conn, account_id, [e for e in SUBSCRIBABLE_EVENTS if e in form.events], now=now
        )


# --- Signing secret ------------------------------------------------------------------------------
def _secret_page(request: Request, who: Viewer, *, reveal: bool, rotated: bool = False) -> Response:
    platform = platform_of(request)
    now = platform.clock.now()
    with platform.db.write() as conn:
        # A fresh account gets its integration (and first secret) here.
        integration_store.ensure(conn, who.account_id, now=now, box=platform.box, rng=platform.rng)
        active = integration_store.active_secrets(conn, who.account_id, now=now, box=platform.box)
    rows = [
        {
            "id": s.id,
            "current": s.expires_at is None,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
            "secret": s.secret if reveal else None,
            "masked": s.secret[:6] + "•" * 12,
        }
        for s in active
    ]
    return page(
        request,
        "secret.html",
        {
            "secrets": rows,
            "revealed": reveal,
            "rotated": rotated,
            "overlap_hours": int(ROTATION_OVERLAP.total_seconds() // 3600),
        },
    )


@router.get("/secret")
def secret_page(request: Request, who: CurrentViewer) -> Response:
    return _secret_page(request, who, reveal=False)


@router.post("/secret/reveal")
def reveal_secret(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    return _secret_page(request, who, reveal=True)


@router.post("/secret/rotate")
def rotate_secret(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    platform = platform_of(request)
    with platform.db.write() as conn:
        integration_store.rotate_secret(
            conn, who.account_id, now=platform.clock.now(), box=platform.box, rng=platform.rng
        )
    return _secret_page(request, who, reveal=True, rotated=True)


# --- Test event ---------------------------------------------------------------------------------
def _publish_test(platform: Platform, account_id: str) -> str | None:
    with platform.db.read() as conn:
        integration = integration_store.get(conn, account_id)
    if integration is None or integration.url is None:
        return None
    published = send_test_event(platform.publisher, account_id=account_id, now=platform.clock.now())
    return published.delivery_id


def _attempted(platform: Platform, account_id: str, delivery_id: str) -> bool:
    with platform.db.read() as conn:
        delivery = delivery_store.get(conn, delivery_id, account_id=account_id)
    return delivery.attempts > 0


@router.post("/test")
async def send_test(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    platform = platform_of(request)
    delivery_id = await run_in_threadpool(_publish_test, platform, who.account_id)
    if delivery_id is None:
        return page(
            request,
            "error.html",
            {
                "title": "No webhook URL yet",
                "message": "Set your endpoint's URL on the webhook settings page first.",
                "link": ("/dashboard/webhook", "Webhook settings"),
            },
            status=409,
        )
    # The in-process worker is woken by the publish; wait for its first attempt, bounded by
    # the delivery timeout (a separate worker process polls, so allow a little more).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + platform.settings.delivery_timeout + 1.0
    while loop.time() < deadline:
        if await run_in_threadpool(_attempted, platform, who.account_id, delivery_id):
            break
        await asyncio.sleep(0.05)
    return RedirectResponse(f"/dashboard/test/{delivery_id}", status_code=303)


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
        integration = integration_store.get(conn, who.account_id)
    last = delivery.attempt_log[-1] if delivery.attempt_log else None
    return page(
        request,
        "test.html",
        {
            "delivery": delivery,
            "attempt": last,
            "url": integration.url if integration else None,
            "headers": request_headers(last.request_headers) if last else [],
            "body": (delivery.body or b"").decode("utf-8", "replace"),
            "hint": hints.hint(
                last.error_class if last else None, timeout=platform.settings.delivery_timeout
            ),
            "error_label": hints.label(last.error_class if last else None),
            "waiting": last is None,
        },
    )
