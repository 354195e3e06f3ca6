"""Deliveries, redelivery, the test event and the events of one call (beyond spec 002).

Same envelope, scopes and 404-until-configured as the spec 002 endpoints. Every query is
restricted to the caller's account; another account's delivery id is "not found", never
"forbidden", so ids reveal nothing about other accounts.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from callhook import queueing
from callhook.api.body import require_json
from callhook.api.envelope import success
from callhook.api.v2.common import (
    BodyWriter,
    Reader,
    Writer,
    parse_model,
    platform_of,
    read,
    read_body,
    reserved,
    responses,
)
from callhook.api.v2.models import (
    DeliveryDetailResponse,
    DeliveryFilter,
    DeliveryPageResponse,
    DeliveryResponse,
    QueuedTestResponse,
    RedeliverCountResponse,
    RedeliverWindow,
    StoredEventListResponse,
)
from callhook.core import ids, times
from callhook.core.clock import rfc3339
from callhook.core.ids import has_id_shape
from callhook.core.outcome import DeliveryStatus
from callhook.errors import (
    IntegrationNotConfigured,
    NotFound,
    PayloadInvalid,
    UnknownEvent,
)
from callhook.events.models import PBX_ID_PATTERN
from callhook.events.names import ALL_EVENTS, TEST_EVENT, is_known
from callhook.publish import Published, send_test_event
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store import integrations as integration_store
from callhook.store.db import Connection
from callhook.store.deliveries import Delivery
from callhook.store.events import StoredEvent

router = APIRouter(tags=["deliveries"])

DEFAULT_PAGE = 50
MAX_PAGE = 100
_DELIVERY_ID = re.compile(ids.id_pattern("dlv"))

DeliveryIdPath = Annotated[
    str,
    Path(
        max_length=64,
        description="A delivery id (dlv_…).",
        examples=["dlv_01JH8Z0000AB4N7K2QXW5YH3RT"],
    ),
]


# --- JSON shapes -------------------------------------------------------------------------------
def _time(when: datetime | None) -> str | None:
    return None if when is None else rfc3339(when)


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "endpoint_id": d.endpoint_id,
        "event": d.event,
        "pbx_id": d.pbx_id,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": rfc3339(d.created_at),
        "next_attempt_at": _time(d.next_attempt_at),
        "last_attempt_at": _time(d.last_attempt_at),
        "last_status_code": d.last_status_code,
        "last_error_class": d.last_error_class,
        "last_latency_ms": d.last_latency_ms,
        "delivered_at": _time(d.delivered_at),
    }


def _headers(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else None


def delivery_detail_json(d: Delivery) -> dict[str, Any]:
    return {
        **delivery_json(d),
        "request_body": orjson.loads(d.body) if d.body else {},
        "attempt_log": [
            {
                "number": a.number,
                "started_at": rfc3339(a.started_at),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "response_body": a.response_body,
                "error_class": a.error_class,
                "error_message": a.error_message,
                "request_headers": _headers(a.request_headers),
            }
            for a in d.attempt_log
        ],
    }


def event_json(e: StoredEvent, made: list[delivery_store.EventDelivery]) -> dict[str, Any]:
    """One event of a call for reconciliation, with the deliveries ``made`` of it."""
    return {
        "id": e.id,
        "event": e.event,
        "pbx_id": e.pbx_id,
        "call_id": e.call_id,
        "sequence": e.sequence,
        "created_at": rfc3339(e.created_at),
        # Delivered: answered 2xx by one of your endpoints. A delivery still queued, retrying,
        # failed or expired unsent has not reached you, which is what reconciling asks.
        "delivered_to_you": any(d.status == DeliveryStatus.DELIVERED for d in made),
        "skip_reason": e.skip_reason,
        "deliveries": [
            {"id": d.id, "endpoint_id": d.endpoint_id, "status": d.shown_status} for d in made
        ],
        "body": orjson.loads(e.body),
    }


# --- Cursors and times ------------------------------------------------------------------------
def decode_cursor(cursor: str) -> str:
    """The delivery id a cursor names (pages are newest first: the next page is older)."""
    if not has_id_shape("dlv", cursor):  # past the pattern: an id's shape, a time past 9999
        raise PayloadInvalid(
            "cursor: not one this API gave: pass next_cursor from the previous page.",
            field="cursor",
        )
    return cursor


def parse_time(name: str, raw: str | None) -> datetime | None:
    """An RFC 3339 date-time with a time zone, in the accepted range (``core.times``), as UTC;
    ``PayloadInvalid`` (422) naming the parameter otherwise (Unix times included)."""
    if raw is None:
        return None
    try:
        return times.time_field(raw, name)
    except PayloadInvalid as exc:
        if _PLUS_AS_SPACE.search(raw):
            # A "+" sent unencoded in a query string arrives as a space (HTML form encoding).
            raise PayloadInvalid(
                f"{exc.message} A '+' in a query string must be sent as %2B.", field=name
            ) from exc
        raise


_PLUS_AS_SPACE = re.compile(r"\d \d{2}(:?\d{2})?$")


def check_delivery_id(delivery_id: str) -> None:
    """``NotFound`` for an id no delivery can have (``dlv_`` + 26 characters), before any query:
    it is answered like an id that never existed."""
    if not has_id_shape("dlv", delivery_id):
        raise NotFound(f"Delivery '{delivery_id}' not found.")


def _require_configured(account_id: str) -> Any:
    return lambda conn: integration_store.require_configured(conn, account_id)


# --- Routes ------------------------------------------------------------------------------------
@router.get(
    "/api/v2/webhooks/deliveries",
    summary="List deliveries",
    description="Your deliveries, newest first, one page at a time. Pass the page's "
    "`next_cursor` as `cursor` for the next; it is null on the last page. Filters combine.",
    response_model=DeliveryPageResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431),
)
async def list_deliveries(
    request: Request,
    caller: Reader,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description="Page size, in plain digits.")
    ] = DEFAULT_PAGE,
    cursor: Annotated[
        str | None,
        Query(
            description="next_cursor of the previous page (opaque to you).",
            # Documented, and checked by ``decode_cursor`` (any length) so that every wrong one
            # gets its message, not a generic one about its length.
            json_schema_extra={"pattern": _DELIVERY_ID.pattern, "maxLength": 64},
        ),
    ] = None,
    status: Annotated[
        DeliveryFilter | None,
        Query(
            description="Only this status; `retrying` is `pending` with at least one attempt "
            "made (the next at `next_attempt_at`)."
        ),
    ] = None,
    event: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only this event name (another name is answered with 400).",
            json_schema_extra={"enum": list(ALL_EVENTS)},
        ),
    ] = None,
    pbx_id: Annotated[
        str | None,
        Query(pattern=PBX_ID_PATTERN, description="Only this pbx_id."),
    ] = None,
    endpoint_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only deliveries to this endpoint (ep_…) of your account (another id "
            "is answered with 404).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description=f"Created at or after (RFC 3339 with a time zone, {times.RANGE_TEXT}).",
            json_schema_extra={"format": "date-time", "pattern": times.RFC3339_PATTERN},
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            max_length=64,
            description=f"Created before (RFC 3339 with a time zone, {times.RANGE_TEXT}); "
            "later than `since` when both are given.",
            json_schema_extra={"format": "date-time", "pattern": times.RFC3339_PATTERN},
        ),
    ] = None,
) -> Response:
    if event is not None and not is_known(event):
        raise UnknownEvent(event)
    before_id = decode_cursor(cursor) if cursor is not None else None
    since_utc, until_utc = parse_time("since", since), parse_time("until", until)
    times.check_span(since_utc, until_utc)

    def work(conn: Connection) -> list[Delivery]:
        integration_store.require_configured(conn, caller.account_id)
        if endpoint_id is not None:
            endpoint_store.get(conn, caller.account_id, endpoint_id)  # 404 unless the account's
        return delivery_store.list_deliveries(
            conn,
            account_id=caller.account_id,
            endpoint_id=endpoint_id,
            status=status,
            event=event,
            pbx_id=pbx_id,
            since=since_utc,
            until=until_utc,
            before_id=before_id,
            limit=limit + 1,
        )

    rows = await read(request, work)
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return success(
        request, {"deliveries": [delivery_json(d) for d in page], "next_cursor": next_cursor}
    )


_WINDOW_SCHEMA = RedeliverWindow.model_json_schema(ref_template="#/components/schemas/{model}")


@router.post(
    "/api/v2/webhooks/deliveries/redeliver",
    summary="Redeliver a time window",
    description="Queue again every delivery of `status` (default failed) created in "
    "[since, until): bulk recovery after an outage of your endpoint. Each gets a fresh 24 h "
    "retry window; the body and event id stay the same.",
    status_code=202,
    response_model=RedeliverCountResponse,
    responses=responses(400, 401, 403, 404, 413, 415, 422, 429, 431),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _WINDOW_SCHEMA}},
        }
    },
)
async def redeliver_window(request: Request, caller: BodyWriter) -> Response:
    require_json(request)
    window = _parse_window(await read_body(request))
    platform = platform_of(request)
    now = platform.clock.now()
    since, until = window.since, window.until

    def check(conn: Connection) -> None:
        integration_store.require_configured(conn, caller.account_id)
        if window.endpoint_id is not None:  # 404 unless the account's
            endpoint_store.get(conn, caller.account_id, window.endpoint_id)

    def work() -> int:
        return queueing.redeliver_window(
            platform.publisher,
            now=now,
            account_id=caller.account_id,
            since=since,
            until=until,
            status=window.status,
            endpoint_id=window.endpoint_id,
            check=check,
        )

    queued = await run_in_threadpool(work)
    return success(request, {"queued": queued}, status=202)


def _parse_window(raw: bytes) -> RedeliverWindow:
    # 422 naming the first bad field, like ingest (times: ``core.times`` in the model).
    return parse_model(raw, RedeliverWindow)


@router.get(
    "/api/v2/webhooks/deliveries/{delivery_id}",
    summary="Get a delivery",
    description="One delivery with the JSON body it sends and every attempt made.",
    response_model=DeliveryDetailResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431),
    dependencies=[Depends(reserved({"redeliver": ("POST",)}, "delivery_id"))],
)
async def get_delivery(request: Request, delivery_id: DeliveryIdPath, caller: Reader) -> Response:
    def work(conn: Connection) -> Delivery:
        integration_store.require_configured(conn, caller.account_id)
        check_delivery_id(delivery_id)
        return delivery_store.get(conn, delivery_id, account_id=caller.account_id)

    return success(request, delivery_detail_json(await read(request, work)))


@router.post(
    "/api/v2/webhooks/deliveries/{delivery_id}/redeliver",
    summary="Redeliver one delivery",
    description="Queue a finished delivery again (same body and event id, signed afresh). A "
    "delivery still pending is left as it is.",
    status_code=202,
    response_model=DeliveryResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431),
)
async def redeliver_one(request: Request, delivery_id: DeliveryIdPath, caller: Writer) -> Response:
    platform = platform_of(request)
    now = platform.clock.now()

    def check(conn: Connection) -> None:
        integration_store.require_configured(conn, caller.account_id)
        check_delivery_id(delivery_id)

    def work() -> Delivery:
        return queueing.redeliver_one(
            platform.publisher, delivery_id, now=now, account_id=caller.account_id, check=check
        )

    delivery = await run_in_threadpool(work)
    return success(request, delivery_json(delivery), status=202)


@router.post(
    "/api/v2/webhooks/test",
    summary="Send a test event",
    description="Queue a `test` event to your webhook URL (even while the integration is "
    "disabled) and return its delivery id. `test` is not subscribable.",
    status_code=202,
    response_model=QueuedTestResponse,
    responses=responses(400, 401, 403, 404, 413, 429, 431),
)
async def send_test(request: Request, caller: Writer) -> Response:
    platform = platform_of(request)
    await read(request, _require_configured(caller.account_id))

    def publish() -> Published:
        return send_test_event(
            platform.publisher, account_id=caller.account_id, now=platform.clock.now()
        )

    published = await run_in_threadpool(publish)
    if published.delivery_id is None:  # the URL was removed in the meantime
        raise IntegrationNotConfigured()
    return success(
        request,
        {"delivery_id": published.delivery_id, "event_id": published.id, "event": TEST_EVENT},
        status=202,
    )


@router.get(
    "/api/v2/webhooks/events/{pbx_id}",
    summary="Events of one call",
    description="Every event of one call (matched on pbx_id or call_id) in sequence order, "
    "with whether it reached you and how each of its deliveries stands: compare with what "
    "you received.",
    response_model=StoredEventListResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431),
)
async def events_of_call(
    request: Request,
    caller: Reader,
    pbx_id: Annotated[str, Path(pattern=PBX_ID_PATTERN, description="A call's pbx_id.")],
) -> Response:
    def work(
        conn: Connection,
    ) -> tuple[list[StoredEvent], dict[str, list[delivery_store.EventDelivery]]]:
        integration_store.require_configured(conn, caller.account_id)
        found = event_store.for_pbx_id(conn, caller.account_id, pbx_id)
        made = delivery_store.of_events(conn, caller.account_id, [e.id for e in found])
        return found, made

    found, made = await read(request, work)
    return success(request, [event_json(e, made.get(e.id, [])) for e in found])
