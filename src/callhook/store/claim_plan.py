"""What one claim may take from each endpoint, decided inside the claim's write transaction.

Paused, disabled and slowed-down endpoints give nothing; a failing endpoint whose probe is due
gives one delivery (and its next probe moves on, so no other worker probes it meanwhile); a
throttled endpoint gives its token bucket's allowance and ``max_in_flight``'s room. The probe
and the tokens are spent once the claim knows what it took (``settle_claim``): a claim that
leaves the endpoint out after all (no room in the worker, its limit reached first) spends
nothing. The rules are pure
(``callhook.core.health``, ``callhook.core.throttle``); the rows are
``callhook.store.endpoint_health``'s, so every worker process shares one breaker and one bucket
per endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from callhook.core import health as machine
from callhook.core import throttle
from callhook.core.health import EndpointState
from callhook.core.outcome import DeliveryStatus
from callhook.store.endpoint_health import ENDPOINT_OF, EndpointHealth, H, Rules, from_row, save
from callhook.store.tables import deliveries, endpoint_health
from callhook.store.types import UTCDateTime


@dataclass(slots=True)
class ClaimPlan:
    """What one claim may take: nothing from ``excluded``, at most ``limited[id]`` from those."""

    excluded: set[str]
    limited: dict[str, int]
    #: Endpoints whose bucket the claim takes from, as refilled at the claim.
    buckets: dict[str, tuple[EndpointHealth, throttle.Bucket]]
    #: The earliest time something excluded or limited may change (a token, a probe, a slow-down
    #: ending): the worker looks again then instead of waiting for its poll.
    next_change: datetime | None = None
    #: Some endpoint was held back by its ``max_in_flight`` alone: a place frees when one of
    #: its attempts is recorded, so the worker looks again then rather than at its poll.
    capped: bool = False
    #: Failing endpoints whose due probe the claim may take, each with its probe claimed (the
    #: next one moved on): saved only if the claim takes it.
    probes: dict[str, EndpointHealth] = field(default_factory=dict)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


# Built once: building it per claim cost more than running it (profiled, bench/claim_cost.py).
_HELD = select(endpoint_health).where(
    or_(
        H.state != EndpointState.ACTIVE.value,
        H.rate_limit.is_not(None),
        H.max_in_flight.is_not(None),
        H.slowed_until > bindparam("now", type_=UTCDateTime),
    )
)
_HELD_FOR_UPDATE = _HELD.with_for_update()


def plan_claim(conn: Connection, *, now: datetime, want: int, rules: Rules) -> ClaimPlan:
    """Which endpoints a claim at ``now`` leaves out or limits, in the claim's transaction. A
    failing endpoint whose probe is due gets one delivery; its next probe moves on when the
    claim takes it (``settle_claim``), so no other worker probes it meanwhile."""
    # Claims that throttle or probe the same endpoint take turns (SQLite has one writer).
    query = _HELD_FOR_UPDATE if conn.dialect.name == "postgresql" else _HELD
    rows = [from_row(r) for r in conn.execute(query, {"now": now})]
    plan = ClaimPlan(set(), {}, {})
    capped = [eh.endpoint_id for eh in rows if eh.max_in_flight is not None]
    in_flight = _in_flight(conn, capped, now)
    # Endpoints that would get a claim of their own: only those with something due do (one
    # statement for all), so thousands of throttled or failing endpoints with nothing waiting
    # cost nothing per claim — no probe written, no claim statement, no bucket update.
    candidates = {
        eh.endpoint_id
        for eh in rows
        if eh.health.state in (EndpointState.ACTIVE, EndpointState.FAILING)
        and (eh.slowed_until is None or eh.slowed_until <= now)
    }
    due = _with_due_work(conn, sorted(candidates), now)
    for eh in rows:
        if eh.endpoint_id in candidates and eh.endpoint_id not in due:
            # Held from the general claim all the same (something may fall due meanwhile: a
            # publish wakes the worker; a retry falling due is met by the poll).
            plan.excluded.add(eh.endpoint_id)
            continue
        h = eh.health
        if h.state in (EndpointState.PAUSED, EndpointState.DISABLED):
            plan.excluded.add(eh.endpoint_id)
            continue
        if eh.slowed_until is not None and eh.slowed_until > now:
            plan.excluded.add(eh.endpoint_id)
            plan.next_change = _earliest(plan.next_change, eh.slowed_until)
            continue
        if h.state is EndpointState.FAILING:
            probe = machine.claim_probe(h, now)
            if probe is None:
                plan.excluded.add(eh.endpoint_id)
                plan.next_change = _earliest(plan.next_change, h.next_probe_at)
                continue
            plan.probes[eh.endpoint_id] = replace(eh, health=probe)
            plan.limited[eh.endpoint_id] = 1
            continue
        at_cap = throttle.room(eh.max_in_flight, in_flight.get(eh.endpoint_id, 0)) == 0
        if at_cap:
            plan.capped = True
        granted, bucket = throttle.allowance(
            want=want,
            bucket=eh.bucket,
            rate=eh.rate_limit,
            max_in_flight=eh.max_in_flight,
            in_flight=in_flight.get(eh.endpoint_id, 0),
            now=now,
        )
        if eh.rate_limit is not None and bucket is not None:
            refilled = throttle.refill(
                eh.bucket or throttle.full(eh.rate_limit, now), eh.rate_limit, now
            )
            plan.buckets[eh.endpoint_id] = (eh, refilled)
            # Only when the bucket held it back: at its cap with tokens left, the next token is
            # "now", and looking again at once would claim nothing until an attempt ends (which
            # ``capped`` waits for).
            if granted == 0 and not at_cap:
                plan.next_change = _earliest(
                    plan.next_change, throttle.next_token_at(refilled, eh.rate_limit, now)
                )
        if granted == 0:
            plan.excluded.add(eh.endpoint_id)
        else:
            plan.limited[eh.endpoint_id] = granted
    return plan


def _with_due_work(conn: Connection, endpoint_ids: list[str], now: datetime) -> set[str]:
    """Those of these endpoints with a delivery due and not leased, in one statement."""
    if not endpoint_ids:
        return set()
    rows = conn.execute(
        select(ENDPOINT_OF)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            ENDPOINT_OF.in_(endpoint_ids),
            deliveries.c.next_attempt_at <= now,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
        )
        .distinct()
    )
    return {endpoint_id for (endpoint_id,) in rows}


def _in_flight(conn: Connection, endpoint_ids: list[str], now: datetime) -> dict[str, int]:
    """Deliveries of these endpoints leased right now, by any worker."""
    if not endpoint_ids:
        return {}
    rows = conn.execute(
        select(ENDPOINT_OF, func.count())
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            ENDPOINT_OF.in_(endpoint_ids),
            and_(deliveries.c.lease_until.is_not(None), deliveries.c.lease_until > now),
        )
        .group_by(ENDPOINT_OF)
    )
    return {endpoint_id: int(n) for endpoint_id, n in rows}


def settle_claim(
    conn: Connection, plan: ClaimPlan, claimed: Mapping[str, int], *, rules: Rules
) -> None:
    """Spend what the claim took (``claimed``: deliveries per endpoint): the probes it took
    (their next one moves on) and the tokens it used from the buckets it drew on. A probe not
    taken stays due; a bucket nothing was taken from is not written (its stored state refills
    to the same tokens at any later time)."""
    for endpoint_id, probed in plan.probes.items():
        if claimed.get(endpoint_id, 0):
            save(conn, probed, rules.policy)
    for endpoint_id, (_eh, refilled) in plan.buckets.items():
        used = claimed.get(endpoint_id, 0)
        if not used:
            continue
        conn.execute(
            update(endpoint_health)
            .where(H.endpoint_id == endpoint_id)
            .values(tokens=max(0.0, refilled.tokens - used), tokens_at=refilled.updated_at)
        )
