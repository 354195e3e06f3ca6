"""An endpoint's signing secret (reveal, rotate) and test event, for every endpoint: the primary
one's at ``/dashboard/secret`` and ``/dashboard/test`` (``pages_webhook``), the others' under
``/dashboard/endpoints/{id}/…``.

Contracts
---------
* Secrets appear in clear only in the response to an explicit "Reveal" or "Rotate" (a POST with
  the CSRF token, sent with ``Cache-Control: no-store``).
* "Send test event" publishes ``test`` to that endpoint only and waits (up to the delivery
  timeout plus a second) for its first attempt before redirecting to the result page.
* Another account's endpoint id is a 404 page, and nothing is done.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.dashboard.auth import CheckedForm, CurrentViewer, DashboardRoute, platform_of
from callhook.dashboard.pages_endpoints import get_endpoint, links
from callhook.dashboard.render import page
from callhook.platform import Platform
from callhook.publish import send_test_event
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store.endpoints import ROTATION_OVERLAP, Endpoint

router = APIRouter(route_class=DashboardRoute)


def secret_page(
    request: Request,
    account_id: str,
    endpoint: Endpoint,
    *,
    reveal: bool,
    rotated: bool = False,
) -> Response:
    """The secrets of ``endpoint``, masked unless ``reveal``."""
    platform = platform_of(request)
    with platform.db.read() as conn:
        active = endpoint_store.active_secrets(
            conn, account_id, endpoint.id, now=platform.clock.now(), box=platform.box
        )
    rows = [
        {
            "id": s.id,
            "current": s.expires_at is None,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
            "secret": s.secret if reveal else None,
            "masked": s.secret[:6] + "•" * 12,
        }
        for s in sorted(active, key=lambda s: s.expires_at is not None)
    ]
    return page(
        request,
        "secret.html",
        {
            "endpoint": endpoint,
            "secret_url": links(endpoint)["secret"],
            "secrets": rows,
            "revealed": reveal,
            "rotated": rotated,
            "overlap_hours": int(ROTATION_OVERLAP.total_seconds() // 3600),
        },
    )


@router.get("/endpoints/{endpoint_id}/secret")
def endpoint_secret(request: Request, who: CurrentViewer, endpoint_id: str) -> Response:
    endpoint = get_endpoint(platform_of(request), who.account_id, endpoint_id)
    if endpoint.primary:
        return RedirectResponse("/dashboard/secret", status_code=303)
    return secret_page(request, who.account_id, endpoint, reveal=False)


@router.post("/endpoints/{endpoint_id}/secret/reveal")
def reveal_endpoint_secret(
    request: Request, who: CurrentViewer, endpoint_id: str, _form: CheckedForm
) -> Response:
    endpoint = get_endpoint(platform_of(request), who.account_id, endpoint_id)
    return secret_page(request, who.account_id, endpoint, reveal=True)


@router.post("/endpoints/{endpoint_id}/secret/rotate")
def rotate_endpoint_secret(
    request: Request, who: CurrentViewer, endpoint_id: str, _form: CheckedForm
) -> Response:
    platform = platform_of(request)
    with platform.db.write() as conn:
        endpoint_store.rotate_secret(
            conn,
            who.account_id,
            endpoint_id,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
    endpoint = get_endpoint(platform, who.account_id, endpoint_id)
    return secret_page(request, who.account_id, endpoint, reveal=True, rotated=True)


def _publish_test(platform: Platform, account_id: str, endpoint_id: str) -> str | None:
    published = send_test_event(
        platform.publisher, account_id=account_id, now=platform.clock.now(), endpoint_id=endpoint_id
    )
    return published.delivery_id


def _attempted(platform: Platform, account_id: str, delivery_id: str) -> bool:
    with platform.db.read() as conn:
        delivery = delivery_store.get(conn, delivery_id, account_id=account_id)
    return delivery.attempts > 0


async def send_test_to(request: Request, account_id: str, endpoint: Endpoint) -> Response:
    """Send a test event to ``endpoint``, wait for its first attempt, show the result page."""
    platform = platform_of(request)
    delivery_id = None
    if endpoint.url is not None:
        delivery_id = await run_in_threadpool(_publish_test, platform, account_id, endpoint.id)
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
        if await run_in_threadpool(_attempted, platform, account_id, delivery_id):
            break
        await asyncio.sleep(0.05)
    return RedirectResponse(f"/dashboard/test/{delivery_id}", status_code=303)


@router.post("/endpoints/{endpoint_id}/test")
async def send_endpoint_test(
    request: Request, who: CurrentViewer, endpoint_id: str, _form: CheckedForm
) -> Response:
    platform = platform_of(request)
    endpoint = await run_in_threadpool(get_endpoint, platform, who.account_id, endpoint_id)
    return await send_test_to(request, who.account_id, endpoint)


__all__ = ["router", "secret_page", "send_test_to"]
