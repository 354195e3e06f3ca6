"""An endpoint's health in the dashboard: its state with the banner ("failing since …, next
probe at …", "will be disabled on … unless it recovers"), the Pause and Resume buttons, the
throttling fields of its form, and its event log (every change of state, with time and cause).

The state machine is ``callhook.core.health``, its rows ``callhook.store.endpoint_health``:
the same as the API's ``POST /api/v2/endpoints/{id}/pause|resume`` and the CLI's
``callhook endpoints pause|resume``. Every route is scoped to the viewer's account (another
account's endpoint is a 404 page).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.core import throttle
from callhook.core.health import Cause
from callhook.core.typed_numbers import decimal_number, whole_number
from callhook.dashboard.auth import CheckedForm, CurrentViewer, DashboardRoute, platform_of
from callhook.errors import Conflict
from callhook.platform import Platform
from callhook.settings import health_rules
from callhook.store import endpoint_health, endpoint_status
from callhook.store import endpoints as endpoint_store
from callhook.store.db import Connection
from callhook.store.endpoints import Endpoint

router = APIRouter(route_class=DashboardRoute)

#: Who a change from the dashboard is recorded as in the endpoint event log.
BY = "customer"
#: Transitions shown on an endpoint's page, newest first.
LOG_ROWS = 20
CAUSES: dict[str, str] = {
    Cause.FAILURES: "failed repeatedly",
    Cause.PROBE_SUCCEEDED: "a probe succeeded",
    Cause.DELIVERED: "a delivery succeeded",
    Cause.PAUSED: "paused",
    Cause.RESUMED: "resumed",
    Cause.DISABLED_BY_HAND: "disabled by hand",
    Cause.AUTO_DISABLED: "failing for too long",
    Cause.URL_CHANGED: "URL changed",
    Cause.TEST_SUCCEEDED: "a test event succeeded",
    Cause.DISABLE_WARNING: "warning: will be disabled",
}


def rules_of(platform: Platform) -> endpoint_health.Rules:
    return endpoint_health.rules_from(platform.settings)


def health_context(conn: Connection, platform: Platform, endpoint: Endpoint) -> dict[str, Any]:
    """What ``endpoint.html`` shows of the endpoint's health: ``status``
    (``endpoint_status.Status``), ``log`` rows and the pause/resume addresses."""
    status = endpoint_status.statuses(
        conn, [endpoint.id], now=platform.clock.now(), rules=rules_of(platform)
    )[endpoint.id]
    log = [
        {
            "at": e.at,
            "change": e.after if e.before == e.after else f"{e.before} → {e.after}",
            "cause": CAUSES.get(e.cause, e.cause),
            "by": e.data.get("by"),
        }
        for e in endpoint_status.event_log(conn, endpoint.id, limit=LOG_ROWS)
    ]
    base = f"/dashboard/endpoints/{endpoint.id}"
    return {
        "status": status,
        "state": endpoint.state.value,
        "health_log": log,
        "pause_url": f"{base}/pause",
        "resume_url": f"{base}/resume",
    }


def limit_texts(status: endpoint_status.Status) -> tuple[str, str]:
    """The form's text of the stored limits (blank: none)."""
    rate = "" if status.rate_limit is None else f"{status.rate_limit:g}"
    cap = "" if status.max_in_flight is None else str(status.max_in_flight)
    return rate, cap


def parse_limits(
    platform: Platform, rate_text: str, cap_text: str, errors: dict[str, str]
) -> tuple[float | None, int | None]:
    """The form's throttling fields (blank: none), within the operator's caps; messages into
    ``errors`` by field."""
    _, _, caps = health_rules(platform.settings)
    rate: float | None = None
    cap: int | None = None
    if rate_text.strip():
        typed_rate = decimal_number(rate_text)
        rate = math.nan if typed_rate is None else typed_rate  # refused by ``check_limits``
    if cap_text.strip():
        typed_cap = whole_number(cap_text)
        cap = 0 if typed_cap is None else typed_cap
    problems = throttle.check_limits(rate, cap, caps)
    if "rate_limit" in problems:
        errors["rate_limit"] = (
            f"Leave empty for no limit, or enter deliveries per second from "
            f"{throttle.MIN_RATE_LIMIT:g} to {caps.max_rate_limit:g}."
        )
    if "max_in_flight" in problems:
        errors["max_in_flight"] = (
            f"Leave empty for no limit, or enter a whole number from 1 to {caps.max_in_flight}."
        )
    return rate, cap


def store_limits(
    conn: Connection,
    platform: Platform,
    endpoint: Endpoint,
    rate: float | None,
    cap: int | None,
) -> None:
    """Store the throttling fields (checked by :func:`parse_limits`)."""
    current = endpoint_health.get(conn, endpoint.id, endpoint.account_id)
    if (current.rate_limit, current.max_in_flight) == (rate, cap):
        return
    _, _, caps = health_rules(platform.settings)
    endpoint_health.set_limits(
        conn,
        endpoint.id,
        endpoint.account_id,
        rate_limit=rate,
        max_in_flight=cap,
        caps=caps,
        keep_bucket=rate == current.rate_limit,
    )


def _back(endpoint: Endpoint, done: str) -> RedirectResponse:
    where = "/dashboard/webhook" if endpoint.primary else f"/dashboard/endpoints/{endpoint.id}"
    return RedirectResponse(f"{where}?saved={done}", status_code=303)


@router.post("/endpoints/{endpoint_id}/pause")
def pause(request: Request, who: CurrentViewer, endpoint_id: str, _form: CheckedForm) -> Response:
    """Pause: new events wait, in order, until Resume."""
    platform = platform_of(request)
    with platform.db.write() as conn:
        endpoint = endpoint_store.get(conn, who.account_id, endpoint_id)
        try:
            endpoint_health.pause(
                conn,
                endpoint.id,
                who.account_id,
                by=BY,
                now=platform.clock.now(),
                rules=rules_of(platform),
            )
        except Conflict:
            return _back(endpoint, "disabled")
    return _back(endpoint, "paused")


@router.post("/endpoints/{endpoint_id}/resume")
def resume(request: Request, who: CurrentViewer, endpoint_id: str, _form: CheckedForm) -> Response:
    """Resume: deliver again at once, what waited first, in order."""
    platform = platform_of(request)
    with platform.db.write() as conn:
        endpoint = endpoint_store.get(conn, who.account_id, endpoint_id)
        endpoint_health.resume(
            conn,
            endpoint.id,
            who.account_id,
            by=BY,
            now=platform.clock.now(),
            rules=rules_of(platform),
        )
    return _back(endpoint, "resumed")
