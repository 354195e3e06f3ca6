"""The overview (health at a glance) and the deliveries: list, detail, redeliver.

Contracts
---------
* Every read and every redelivery is scoped to the viewer's account: another account's delivery
  id answers 404 and is never queued.
* Filters are validated; a bad value is shown next to its field, never a 500. Times are
  ``YYYY-MM-DDTHH:MM`` in UTC (what ``<input type=datetime-local>`` sends) within the accepted
  range (``core.times``: 1970 to 9999); a pbx_id is an id of the catalog's form; a delivery id
  that cannot exist is "not found" without a query.
* "Redeliver failed since…" queues again every *failed* delivery of the account created at or
  after the given UTC time, and says how many.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook import queueing
from callhook.core import times
from callhook.core.ids import has_id_shape
from callhook.core.outcome import ErrorClass
from callhook.dashboard import hints
from callhook.dashboard.auth import CheckedForm, CurrentViewer, DashboardRoute, platform_of, text
from callhook.dashboard.charts import hourly_chart
from callhook.dashboard.pages_webhook import request_headers
from callhook.dashboard.render import clock_time, page
from callhook.errors import NotFound, PayloadInvalid
from callhook.events import ALL_EVENTS
from callhook.events.models import PBX_ID_WORDS, is_pbx_id
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store import stats as stats_store

router = APIRouter(route_class=DashboardRoute)

PAGE_SIZE = 50
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


_FORM_MESSAGE = "Use the form YYYY-MM-DDTHH:MM (UTC)."
_RANGE_MESSAGE = "Use a time from 1970-01-01T00:00 to 9999-12-31T23:59 (UTC)."


def parse_utc(value: str) -> datetime:
    """``YYYY-MM-DDTHH:MM`` (what ``<input type=datetime-local>`` sends), read as UTC.

    Raises ``times.TimeInvalid`` outside the accepted range, ``ValueError`` for other text.
    """
    for fmt in (_LOCAL_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return times.in_range(parsed)
    raise ValueError(value)


def _time_error(value: str) -> str | None:
    """The message for a time filter the user typed, or None when it is fine."""
    try:
        parse_utc(value)
    except times.TimeInvalid:
        return _RANGE_MESSAGE
    except ValueError:
        return _FORM_MESSAGE
    return None


def _check_delivery_id(delivery_id: str) -> None:
    if not has_id_shape("dlv", delivery_id):
        raise NotFound(f"Delivery '{delivery_id}' not found.")


def endpoint_names(endpoints: list[endpoint_store.Endpoint]) -> dict[str, str]:
    """Each endpoint's name for people (its description, else "primary" or its URL's host);
    empty for an account with one endpoint, whose tables need no endpoint column."""
    if len(endpoints) < 2:
        return {}
    from urllib.parse import urlsplit

    return {
        e.id: e.description
        or ("primary" if e.primary else (urlsplit(e.url or "").hostname or e.id))
        for e in endpoints
    }


def banner(platform: Platform, account_id: str) -> dict[str, Any] | None:
    """The failure banner's facts, or None while the endpoint is healthy."""
    with platform.db.read() as conn:
        streak = stats_store.failure_streak(conn, account_id, now=platform.clock.now())
    if streak is None:
        return None
    error = hints.label(streak.last_error)
    if streak.last_error == ErrorClass.HTTP_STATUS and streak.last_status_code is not None:
        error = f"HTTP {streak.last_status_code}"
    plural = "failure" if streak.consecutive == 1 else "failures"
    return {
        "since": clock_time(streak.since, platform.clock.now()),
        "since_full": streak.since,
        "consecutive": streak.consecutive,
        "error": error,
        "text": (
            f"failing since {clock_time(streak.since, platform.clock.now())} UTC, "
            f"{streak.consecutive} consecutive {plural}, last error: {error}"
        ),
        "hint": hints.hint(streak.last_error, timeout=platform.settings.delivery_timeout),
    }


@router.get("")
def overview(request: Request, who: CurrentViewer) -> Response:
    platform = platform_of(request)
    now = platform.clock.now()
    with platform.db.read() as conn:
        health = stats_store.health(conn, who.account_id, now=now)
        integration = integration_store.get(conn, who.account_id)
        recent = delivery_store.list_deliveries(conn, account_id=who.account_id, limit=8)
    return page(
        request,
        "overview.html",
        {
            "health": health,
            "chart": hourly_chart(health.hourly),
            "banner": banner(platform, who.account_id),
            "integration": integration,
            "recent": recent,
        },
    )


def _filters(
    request: Request, endpoint_ids: set[str]
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """(values as typed, errors per field, arguments for ``list_deliveries``); ``endpoint_ids``
    are the account's endpoints (the only ones the endpoint filter takes)."""
    q = request.query_params
    names = ("status", "event", "pbx_id", "since", "before", "endpoint")
    values = {k: q.get(k, "").strip() for k in names}
    errors: dict[str, str] = {}
    args: dict[str, Any] = {}
    if values["status"]:
        if values["status"] in delivery_store.FILTERS:
            args["status"] = values["status"]
        else:
            errors["status"] = "Choose a status from the list."
    if values["event"]:
        if values["event"] in ALL_EVENTS:
            args["event"] = values["event"]
        else:
            errors["event"] = "Choose an event from the list."
    if values["pbx_id"]:
        if is_pbx_id(values["pbx_id"]):
            args["pbx_id"] = values["pbx_id"]
        else:
            errors["pbx_id"] = f"A pbx_id is {PBX_ID_WORDS.replace('1-128', '1 to 128')}."
    if values["since"]:
        message = _time_error(values["since"])
        if message is None:
            args["since"] = parse_utc(values["since"])
        else:
            errors["since"] = message
    if values["endpoint"]:
        if values["endpoint"] in endpoint_ids:
            args["endpoint_id"] = values["endpoint"]
        else:
            errors["endpoint"] = "Choose an endpoint from the list."
    if values["before"]:
        if has_id_shape("dlv", values["before"]):
            args["before_id"] = values["before"]
        else:
            errors["before"] = "This page link is broken; start again from the newest deliveries."
    return values, errors, args


def _list_page(
    request: Request,
    account_id: str,
    *,
    bulk_since: str | None = None,
    bulk_error: str | None = None,
    status: int = 200,
) -> Response:
    platform = platform_of(request)
    with platform.db.read() as conn:
        endpoints = endpoint_store.list_for_account(conn, account_id)
    values, errors, args = _filters(request, {e.id for e in endpoints})
    rows: list[delivery_store.Delivery] = []
    if not errors:
        with platform.db.read() as conn:
            rows = delivery_store.list_deliveries(
                conn, account_id=account_id, limit=PAGE_SIZE, **args
            )
    next_link = None
    if len(rows) == PAGE_SIZE:
        kept = {k: v for k, v in values.items() if v and k != "before"}
        next_link = "/dashboard/deliveries?" + urlencode({**kept, "before": rows[-1].id})
    default_since = (platform.clock.now() - timedelta(hours=24)).strftime(_LOCAL_FORMAT)
    requeued = request.query_params.get("requeued")
    return page(
        request,
        "deliveries.html",
        {
            "rows": rows,
            "filters": values,
            "errors": errors,
            "statuses": delivery_store.FILTERS,
            "events": ALL_EVENTS,
            "endpoints": endpoints,
            "endpoint_names": endpoint_names(endpoints),
            "next_link": next_link,
            "bulk_since": bulk_since if bulk_since is not None else default_since,
            "bulk_error": bulk_error,
            "requeued": int(requeued) if requeued and requeued.isdigit() else None,
            "label": hints.label,
        },
        status=status if not errors else 400,
    )


@router.get("/deliveries")
def deliveries_page(request: Request, who: CurrentViewer) -> Response:
    return _list_page(request, who.account_id)


@router.post("/deliveries/redeliver-failed")
def redeliver_failed(request: Request, who: CurrentViewer, form: CheckedForm) -> Response:
    platform = platform_of(request)
    raw = text(form, "since", limit=40)
    problem = _time_error(raw)
    if problem is not None:
        return _list_page(
            request,
            who.account_id,
            bulk_since=raw,
            bulk_error=(
                _RANGE_MESSAGE
                if problem == _RANGE_MESSAGE
                else "Enter a date and time, like 2026-01-15T10:00 (UTC)."
            ),
            status=400,
        )
    since = parse_utc(raw)
    try:
        count = queueing.redeliver_window(
            platform.publisher, now=platform.clock.now(), account_id=who.account_id, since=since
        )
    except PayloadInvalid:
        return _list_page(
            request,
            who.account_id,
            bulk_since=raw,
            bulk_error="Enter a time in the past (UTC): deliveries created since then are queued.",
            status=400,
        )
    return RedirectResponse(f"/dashboard/deliveries?requeued={count}", status_code=303)


@router.get("/deliveries/{delivery_id}")
def delivery_page(request: Request, who: CurrentViewer, delivery_id: str) -> Response:
    platform = platform_of(request)
    _check_delivery_id(delivery_id)
    with platform.db.read() as conn:
        delivery = delivery_store.get(conn, delivery_id, account_id=who.account_id)
    attempts = [
        {
            "attempt": a,
            "headers": request_headers(a.request_headers),
            "hint": hints.hint(a.error_class, timeout=platform.settings.delivery_timeout),
            "label": hints.label(a.error_class),
        }
        for a in reversed(delivery.attempt_log)
    ]
    return page(
        request,
        "delivery.html",
        {
            "delivery": delivery,
            "attempts": attempts,
            "body": (delivery.body or b"").decode("utf-8", "replace"),
            "redelivered": request.query_params.get("redelivered") == "1",
            "label": hints.label,
        },
    )


@router.post("/deliveries/{delivery_id}/redeliver")
def redeliver(request: Request, who: CurrentViewer, delivery_id: str, _f: CheckedForm) -> Response:
    platform = platform_of(request)
    _check_delivery_id(delivery_id)
    queueing.redeliver_one(
        platform.publisher, delivery_id, now=platform.clock.now(), account_id=who.account_id
    )
    return RedirectResponse(f"/dashboard/deliveries/{delivery_id}?redelivered=1", status_code=303)
