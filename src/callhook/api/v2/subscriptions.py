"""The four endpoints of spec 002, to the letter: list available, list enabled, enable, disable.

Every one answers spec 002's 404 until the account's integration has a webhook URL (the API
cannot create the integration or set its URL). Enabling and disabling are idempotent; an
unknown name is spec 002's 400 and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.requests import Request
from starlette.responses import Response

from callhook.api.envelope import success
from callhook.api.v2.common import Reader, Writer, platform_of, read, reserved, responses, write
from callhook.api.v2.models import EventListResponse, WebhookSettingResponse
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.store import integrations as integration_store
from callhook.store.db import Connection
from callhook.store.integrations import Integration

router = APIRouter(tags=["subscriptions"])

#: Fixed paths beside ``/webhooks/{event}`` and the methods they allow (else 405, not 400).
FIXED_PATHS = {"available": ("GET",), "deliveries": ("GET",), "test": ("POST",)}
#: Longer than any event name; longer path segments are refused before any lookup.
MAX_EVENT_LENGTH = 64

EventPath = Annotated[
    str,
    Path(
        max_length=MAX_EVENT_LENGTH,
        description="An event name from GET /api/v2/webhooks/available (another name is "
        "answered with 400).",
        examples=["outgoing_call_end"],
        # Documented, not enforced by the framework: an unknown name gets spec 002's 400.
        json_schema_extra={"enum": list(SUBSCRIBABLE_EVENTS)},
    ),
]


def webhook_setting(integration: Integration) -> dict[str, Any]:
    """The WebhookSetting object of spec 002."""
    return {
        "webhook_url": integration.url,
        "enabled": integration.enabled,
        "subscribed_events": list(integration.subscribed_events),
    }


@router.get(
    "/api/v2/webhooks/available",
    summary="List available events",
    description="Every event type that can be subscribed to, in catalog order.",
    response_model=EventListResponse,
    responses=responses(400, 401, 403, 404, 413, 429, 431),
)
async def list_available(request: Request, caller: Reader) -> Response:
    await read(request, lambda conn: integration_store.require_configured(conn, caller.account_id))
    return success(request, [{"event": name} for name in SUBSCRIBABLE_EVENTS])


@router.get(
    "/api/v2/webhooks",
    summary="List enabled events",
    description="Only the events your webhook is currently subscribed to.",
    response_model=EventListResponse,
    responses=responses(400, 401, 403, 404, 413, 429, 431),
)
async def list_enabled(request: Request, caller: Reader) -> Response:
    integration = await read(
        request, lambda conn: integration_store.require_configured(conn, caller.account_id)
    )
    return success(request, [{"event": name} for name in integration.subscribed_events])


_guard = [Depends(reserved(FIXED_PATHS, "event"))]


@router.post(
    "/api/v2/webhooks/{event}",
    summary="Enable an event",
    description="Subscribe to one event by name. Idempotent: enabling an enabled event has no "
    "effect. Returns the full current WebhookSetting.",
    response_model=WebhookSettingResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431),
    dependencies=_guard,
)
async def enable_event(request: Request, event: EventPath, caller: Writer) -> Response:
    now = platform_of(request).clock.now()

    def work(conn: Connection) -> Integration:
        return integration_store.subscribe(conn, caller.account_id, [event], now=now)

    return success(request, webhook_setting(await write(request, work)))


@router.delete(
    "/api/v2/webhooks/{event}",
    summary="Disable an event",
    description="Unsubscribe from one event by name. Idempotent. Returns the full current "
    "WebhookSetting.",
    response_model=WebhookSettingResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431),
    dependencies=_guard,
)
async def disable_event(request: Request, event: EventPath, caller: Writer) -> Response:
    now = platform_of(request).clock.now()

    def work(conn: Connection) -> Integration:
        return integration_store.unsubscribe(conn, caller.account_id, [event], now=now)

    return success(request, webhook_setting(await write(request, work)))
