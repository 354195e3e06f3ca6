"""Reading endpoint health for people: the status every surface (API, CLI, dashboard) shows
beside an endpoint's ``state``, the endpoint event log, and the count of endpoints by state (the
operator overview and ``/metrics``). The rows are ``callhook.store.endpoint_health``'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from callhook.core import health as machine
from callhook.core.health import EndpointState
from callhook.store.endpoint_health import EndpointHealth, H, Rules, load
from callhook.store.tables import endpoint_events, endpoint_health, endpoints


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    """One row of the endpoint event log."""

    at: datetime
    before: str
    after: str
    cause: str
    alert: str | None
    data: dict[str, Any]


def event_log(conn: Connection, endpoint_id: str, *, limit: int = 50) -> list[EndpointEvent]:
    """The endpoint's transitions, newest first."""
    c = endpoint_events.c
    rows = conn.execute(
        select(c.at, c.before, c.after, c.cause, c.alert, c.data)
        .where(c.endpoint_id == endpoint_id)
        .order_by(c.at.desc(), c.id.desc())
        .limit(limit)
    )
    return [
        EndpointEvent(r.at, r.before, r.after, r.cause, r.alert, json.loads(r.data)) for r in rows
    ]


def counts_by_state(conn: Connection) -> dict[str, int]:
    """Endpoints (configured with a URL) by state. One switched off by hand (``enabled``
    false) is ``disabled``; one without a health row is ``active``."""
    counts = {s.value: 0 for s in EndpointState}
    i = endpoints.c
    state = case(
        (i.enabled.is_(False), EndpointState.DISABLED.value),
        else_=func.coalesce(H.state, EndpointState.ACTIVE.value),
    )
    rows = conn.execute(
        select(state, func.count())
        .select_from(endpoints.outerjoin(endpoint_health, H.endpoint_id == i.id))
        .where(i.url.is_not(None))
        .group_by(state)
    )
    for name, n in rows:
        counts[name] = counts.get(name, 0) + int(n)
    return counts


@dataclass(frozen=True, slots=True)
class Status:
    """What every surface (API, CLI, dashboard) shows of an endpoint's health beside its
    ``state``: times are None where they do not apply (``next_probe_at``, ``failing_since``
    and ``disable_at`` only while failing; ``slowed_until`` only while a ``Retry-After`` holds
    the endpoint)."""

    state_since: datetime | None = None
    failing_since: datetime | None = None
    next_probe_at: datetime | None = None
    disable_at: datetime | None = None
    slowed_until: datetime | None = None
    rate_limit: float | None = None
    max_in_flight: int | None = None
    replay_on_recovery: bool = True


def status_of(eh: EndpointHealth | None, *, now: datetime, rules: Rules) -> Status:
    """The :class:`Status` of one endpoint's row (the defaults without one)."""
    if eh is None:
        return Status()
    h = eh.health
    failing = h.state is EndpointState.FAILING
    return Status(
        state_since=h.since,
        failing_since=h.failing_since if failing else None,
        next_probe_at=h.next_probe_at if failing else None,
        disable_at=machine.disable_deadline(h, rules.policy),
        slowed_until=eh.slowed_until
        if eh.slowed_until is not None and eh.slowed_until > now
        else None,
        rate_limit=eh.rate_limit,
        max_in_flight=eh.max_in_flight,
        replay_on_recovery=eh.replay_on_recovery,
    )


def statuses(
    conn: Connection, endpoint_ids: Iterable[str], *, now: datetime, rules: Rules
) -> dict[str, Status]:
    """The :class:`Status` of each of these endpoints, in one statement."""
    ids = list(endpoint_ids)
    rows = load(conn, ids)
    return {eid: status_of(rows.get(eid), now=now, rules=rules) for eid in ids}
