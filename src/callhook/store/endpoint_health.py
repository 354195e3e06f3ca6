"""Endpoint health in the database: one breaker and one token bucket per endpoint, shared by
every worker process; the endpoint event log; replay on recovery.

The rules are pure (``callhook.core.health``, ``callhook.core.throttle``,
``callhook.core.replay``); this module loads the rows, feeds the machine and writes back, always
inside the caller's write transaction (the claim, the group commit, an API call), so a state
change and what it implies (the log row, the alert, the replay, failing the queue of a disabled
endpoint) commit together or not at all. An endpoint without a row is ``active`` with no limits:
the hot path (a success on a healthy endpoint) writes nothing.

The machine's state is mirrored in ``endpoints.state`` (written in the same statement group) so
everything that reads an endpoint shows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, or_, select, update

from callhook.core import health as machine
from callhook.core import replay as replay_rules
from callhook.core import throttle
from callhook.core.clock import rfc3339
from callhook.core.health import (
    AttemptVerdict,
    Cause,
    EndpointState,
    Health,
    HealthPolicy,
    Step,
    Transition,
)
from callhook.core.outcome import DeliveryStatus, ErrorClass
from callhook.errors import Conflict, InvalidRequest
from callhook.settings import Settings, health_rules
from callhook.store import alerts as alert_store
from callhook.store import dialect, ordering
from callhook.store.tables import deliveries, endpoint_events, endpoint_health, endpoints

#: The deliveries column naming a delivery's endpoint.
ENDPOINT_OF = deliveries.c.endpoint_id


def deliveries_of(endpoint_id: str) -> ColumnElement[bool]:
    """The condition "this delivery goes to ``endpoint_id``"."""
    return ENDPOINT_OF.__eq__(endpoint_id)


H = endpoint_health.c


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint's row: its machine state, throttle settings and bucket."""

    endpoint_id: str
    account_id: str
    health: Health = field(default_factory=Health)
    rate_limit: float | None = None
    max_in_flight: int | None = None
    replay_on_recovery: bool = True
    bucket: throttle.Bucket | None = None
    slowed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    """The operator's rules, from settings."""

    policy: HealthPolicy = field(default_factory=HealthPolicy)
    replay: replay_rules.ReplayPolicy = field(default_factory=replay_rules.ReplayPolicy)


def rules_from(settings: Settings) -> Rules:
    """The rules the settings say."""
    policy, replay_policy, _caps = health_rules(settings)
    return Rules(policy, replay_policy)


# --- reading and writing rows ------------------------------------------------------------------
def from_row(r: Any) -> EndpointHealth:
    bucket = None
    if r.tokens is not None and r.tokens_at is not None:
        bucket = throttle.Bucket(r.tokens, r.tokens_at)
    return EndpointHealth(
        endpoint_id=r.endpoint_id,
        account_id=r.account_id,
        health=Health(
            state=EndpointState(r.state),
            since=r.since,
            consecutive_failures=r.consecutive_failures,
            failing_since=r.failing_since,
            next_probe_at=r.next_probe_at,
            probe_cooldown=r.probe_cooldown,
            warned_before=r.warned_before,
        ),
        rate_limit=r.rate_limit,
        max_in_flight=r.max_in_flight,
        replay_on_recovery=bool(r.replay_on_recovery),
        bucket=bucket,
        slowed_until=r.slowed_until,
    )


# Built once: every completion with a failure (or a row to read) runs it (bench/claim_cost.py).
_LOAD = select(endpoint_health).where(H.endpoint_id.in_(bindparam("ids", expanding=True)))
_LOAD_FOR_UPDATE = _LOAD.with_for_update()


def load(conn: Connection, endpoint_ids: Iterable[str], *, lock: bool = False) -> dict[str, Any]:
    """The rows of these endpoints (missing ones are absent), locked on PostgreSQL if ``lock``."""
    ids = sorted(set(endpoint_ids))
    if not ids:
        return {}
    query = _LOAD_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _LOAD
    return {r.endpoint_id: from_row(r) for r in conn.execute(query, {"ids": ids})}


def get(conn: Connection, endpoint_id: str, account_id: str) -> EndpointHealth:
    """One endpoint's health (the defaults if it has no row)."""
    return load(conn, [endpoint_id]).get(endpoint_id) or EndpointHealth(endpoint_id, account_id)


def _ensure(conn: Connection, pairs: Iterable[tuple[str, str]]) -> None:
    rows = [
        {
            "endpoint_id": endpoint_id,
            "account_id": account_id,
            "state": EndpointState.ACTIVE.value,
            "consecutive_failures": 0,
            "probe_cooldown": 0.0,
            "replay_on_recovery": True,
        }
        for endpoint_id, account_id in pairs
    ]
    dialect.insert_ignore(conn, endpoint_health, rows)


def save(conn: Connection, eh: EndpointHealth, policy: HealthPolicy) -> None:
    h = eh.health
    conn.execute(
        update(endpoint_health)
        .where(H.endpoint_id == eh.endpoint_id)
        .values(
            state=h.state.value,
            since=h.since,
            consecutive_failures=h.consecutive_failures,
            failing_since=h.failing_since,
            next_probe_at=h.next_probe_at,
            probe_cooldown=h.probe_cooldown,
            warned_before=h.warned_before,
            next_check_at=machine.next_check_at(h, policy),
            slowed_until=eh.slowed_until,
        )
    )
    conn.execute(
        update(endpoints)
        .where(endpoints.c.id == eh.endpoint_id, endpoints.c.state != h.state.value)
        .values(state=h.state.value)
    )


def _jsonable(value: Any) -> Any:
    return rfc3339(value) if isinstance(value, datetime) else value


def _alert(conn: Connection, eh: EndpointHealth, t: Transition) -> None:
    """The one place a transition raises its alert: into the alerts outbox (operational
    webhook, mail), in this transaction, once per endpoint and transition."""
    assert t.alert is not None
    url = conn.execute(
        select(endpoints.c.url).where(endpoints.c.id == eh.endpoint_id)
    ).scalar_one_or_none()
    data: dict[str, Any] = {k: _jsonable(v) for k, v in t.data.items()}
    data.update(
        transition_at=rfc3339(t.at),
        reason=t.cause.value,
        state=t.after.value,
        url=url,
    )
    if t.after is EndpointState.FAILING and eh.health.next_probe_at is not None:
        data["next_probe_at"] = rfc3339(eh.health.next_probe_at)
    alert_store.record_alert(conn, t.alert, eh.account_id, eh.endpoint_id, data, t.at)


def _log(conn: Connection, eh: EndpointHealth, transitions: Iterable[Transition]) -> None:
    for t in transitions:
        conn.execute(
            endpoint_events.insert().values(
                endpoint_id=eh.endpoint_id,
                account_id=eh.account_id,
                at=t.at,
                before=t.before.value,
                after=t.after.value,
                cause=t.cause.value,
                alert=t.alert.value if t.alert else None,
                data=json.dumps({k: _jsonable(v) for k, v in t.data.items()}, sort_keys=True),
            )
        )
        if t.alert is not None:
            _alert(conn, eh, t)


# --- applying the machine ----------------------------------------------------------------------
def _commit_step(
    conn: Connection, before: EndpointHealth, step: Step, now: datetime, rules: Rules
) -> list[Transition]:
    """Write a step's health, log its transitions and do what each implies."""
    after = replace(before, health=step.health)
    if step.health != before.health:
        save(conn, after, rules.policy)
    _log(conn, after, step.transitions)
    for t in step.transitions:
        if t.after is t.before:
            continue
        recovered = t.before is EndpointState.FAILING and t.after is EndpointState.ACTIVE
        if recovered and after.replay_on_recovery and before.health.failing_since is not None:
            replay(conn, after.endpoint_id, before.health.failing_since, now, rules.replay)
        if t.after is EndpointState.DISABLED:
            _set_enabled(conn, after.endpoint_id, False, now)
            _fail_queue(conn, after.endpoint_id, now)
        if t.before is EndpointState.DISABLED:
            _set_enabled(conn, after.endpoint_id, True, now)
        if t.before is EndpointState.PAUSED:
            _restart_windows(conn, after.endpoint_id, now)
    return list(step.transitions)


def change(
    conn: Connection,
    endpoint_id: str,
    account_id: str,
    fn: Callable[[Health], Step],
    *,
    now: datetime,
    rules: Rules,
) -> list[Transition]:
    """Feed one input (``fn``: pause, resume, reset, …) to one endpoint's machine, in the
    caller's transaction. ``ValueError`` from ``fn`` (pausing a disabled endpoint) becomes
    ``Conflict``."""
    _ensure(conn, [(endpoint_id, account_id)])
    before = load(conn, [endpoint_id], lock=True)[endpoint_id]
    try:
        step = fn(before.health)
    except ValueError as exc:
        raise Conflict(str(exc)) from exc
    return _commit_step(conn, before, step, now, rules)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One recorded attempt's meaning for its endpoint."""

    endpoint_id: str
    account_id: str
    verdict: AttemptVerdict
    at: datetime
    #: A 429/503's Retry-After (seconds): the whole endpoint waits this long.
    retry_after: float | None = None


def record(
    conn: Connection, verdicts: Iterable[Verdict], *, now: datetime, rules: Rules
) -> list[tuple[str, Transition]]:
    """Feed a group commit's attempt verdicts to their endpoints, in order. Endpoints without a
    row whose attempts all succeeded are not touched (nothing to write)."""
    by_endpoint: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.verdict is not AttemptVerdict.NEUTRAL:
            by_endpoint.setdefault(v.endpoint_id, []).append(v)
    if not by_endpoint:
        return []
    rows = load(conn, by_endpoint, lock=True)
    needs_row = [
        (eid, vs[0].account_id)
        for eid, vs in by_endpoint.items()
        if eid not in rows and any(v.verdict is AttemptVerdict.FAILURE or v.retry_after for v in vs)
    ]
    if needs_row:
        _ensure(conn, needs_row)
        rows.update(load(conn, [eid for eid, _ in needs_row], lock=True))
    out: list[tuple[str, Transition]] = []
    for endpoint_id, vs in by_endpoint.items():
        before = rows.get(endpoint_id)
        if before is None:
            continue
        health, transitions = before.health, list[Transition]()
        slowed = before.slowed_until
        for v in vs:
            step = machine.record_attempt(health, v.verdict, v.at, rules.policy)
            health, transitions = step.health, transitions + list(step.transitions)
            if v.retry_after is not None:
                until = throttle.slowed_until(v.at, v.retry_after)
                slowed = until if slowed is None else max(slowed, until)
        start = replace(before, slowed_until=slowed)
        if slowed != before.slowed_until and health == before.health:
            save(conn, start, rules.policy)
        done = _commit_step(conn, start, Step(health, tuple(transitions)), now, rules)
        out += [(endpoint_id, t) for t in done]
    return out


def check_due(conn: Connection, *, now: datetime, rules: Rules) -> list[tuple[str, Transition]]:
    """Warnings and automatic disabling that have fallen due (call every few minutes)."""
    due = conn.execute(
        select(H.endpoint_id).where(H.state == EndpointState.FAILING.value, H.next_check_at <= now)
    ).scalars()
    out: list[tuple[str, Transition]] = []
    for endpoint_id, eh in load(conn, list(due), lock=True).items():
        step = machine.check(eh.health, now, rules.policy)
        out += [(endpoint_id, t) for t in _commit_step(conn, eh, step, now, rules)]
    return out


# --- what a state change implies ---------------------------------------------------------------
def replay(
    conn: Connection,
    endpoint_id: str,
    outage_start: datetime,
    now: datetime,
    policy: replay_rules.ReplayPolicy,
) -> int:
    """Queue again the endpoint's deliveries that failed for good since ``outage_start``
    (``callhook.core.replay``). Each is due a microsecond after the one before in creation
    order, the last one a microsecond before ``now`` — all due at once; claims take them by
    claim key (call-control first, then by due time), and a call's events go through its line
    again (``ordering.requeue``: waiting until the next line sweep). Each gets a new retry
    window."""
    if policy.max_count == 0:
        return 0
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.created_at, deliveries.c.last_attempt_at)
        .where(
            deliveries_of(endpoint_id),
            deliveries.c.status == DeliveryStatus.FAILED.value,
            deliveries.c.last_attempt_at >= outage_start,
            deliveries.c.created_at >= replay_rules.oldest_created(now, policy),
        )
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
        .limit(policy.max_count)
    ).all()
    chosen = replay_rules.select(
        (replay_rules.FailedDelivery(r.id, r.created_at, r.last_attempt_at) for r in rows),
        outage_start=outage_start,
        now=now,
        policy=policy,
    )
    # Due a microsecond apart, in the replay's order; a call's events to an endpoint that
    # orders per call go through its line again (``ordering.requeue``), else claims running in
    # parallel sent them in any order.
    due = {d: now - timedelta(microseconds=len(chosen) - i) for i, d in enumerate(chosen)}
    if not due:
        return 0
    return ordering.requeue(
        conn,
        and_(deliveries.c.id.in_(list(due)), deliveries.c.status == DeliveryStatus.FAILED.value),
        now=now,
        due=due.__getitem__,
    )


def _set_enabled(conn: Connection, endpoint_id: str, enabled: bool, now: datetime) -> None:
    conn.execute(
        update(endpoints)
        .where(endpoints.c.id == endpoint_id)
        .values(enabled=enabled, updated_at=now)
    )


def _fail_queue(conn: Connection, endpoint_id: str, now: datetime) -> None:
    """A disabled endpoint's queued deliveries are not delivered: failed, with the reason —
    those pending (not in flight) and those waiting behind an earlier event of their call
    (issue 14), whose lines are let go (a failed holder left holding kept the rest of its call
    waiting until the sweep's bound)."""
    conn.execute(
        update(deliveries)
        .where(
            deliveries_of(endpoint_id),
            deliveries.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.WAITING.value]),
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
        )
        .values(
            status=DeliveryStatus.FAILED.value,
            next_attempt_at=None,
            last_error_class=ErrorClass.INTEGRATION_DISABLED.value,
            holds_line=False,
            line_since=None,
        )
    )


def _restart_windows(conn: Connection, endpoint_id: str, now: datetime) -> None:
    """Deliveries that waited out a pause get their whole retry window from the resume: a
    customer's maintenance must not eat the time their events have to arrive."""
    conn.execute(
        update(deliveries)
        .where(deliveries_of(endpoint_id), deliveries.c.status == DeliveryStatus.PENDING.value)
        .values(window_start=now)
    )


# --- settings and operator actions ------------------------------------------------------------
def set_limits(
    conn: Connection,
    endpoint_id: str,
    account_id: str,
    *,
    rate_limit: float | None,
    max_in_flight: int | None,
    replay_on_recovery: bool | None = None,
    caps: throttle.Caps,
    keep_bucket: bool = False,
) -> EndpointHealth:
    """Set an endpoint's throttling (and ``replay_on_recovery`` unless None). Refused with
    ``InvalidRequest`` naming the field, nothing changed, outside the operator's caps. A new
    rate starts with a full bucket; ``keep_bucket`` (the rate did not change) keeps it, so
    saving other fields grants no extra burst."""
    problems = throttle.check_limits(rate_limit, max_in_flight, caps)
    if problems:
        field, message = next(iter(problems.items()))
        raise InvalidRequest(f"{field} {message}")
    _ensure(conn, [(endpoint_id, account_id)])
    values: dict[str, Any] = {"rate_limit": rate_limit, "max_in_flight": max_in_flight}
    if not keep_bucket:
        values.update(tokens=None, tokens_at=None)  # a new rate starts with a full bucket
    if replay_on_recovery is not None:
        values["replay_on_recovery"] = replay_on_recovery
    conn.execute(update(endpoint_health).where(H.endpoint_id == endpoint_id).values(**values))
    return get(conn, endpoint_id, account_id)


def reset(
    conn: Connection,
    endpoint_id: str,
    account_id: str,
    cause: Cause,
    *,
    now: datetime,
    rules: Rules,
) -> list[Transition]:
    """The customer fixed something (new URL, a successful test): deliveries resume at once.
    An endpoint without a health row has nothing to reset (and gets no row)."""
    if not load(conn, [endpoint_id]):
        return []
    return change(
        conn, endpoint_id, account_id, lambda h: machine.reset(h, now, cause), now=now, rules=rules
    )


def pause(
    conn: Connection, endpoint_id: str, account_id: str, *, by: str, now: datetime, rules: Rules
) -> list[Transition]:
    """Pause the endpoint (``by``: ``customer`` or ``operator``): new events wait ``pending``,
    in order. Idempotent. ``Conflict`` for a disabled endpoint (resume it first)."""
    return change(
        conn,
        endpoint_id,
        account_id,
        lambda h: machine.pause(h, now, by=by),
        now=now,
        rules=rules,
    )


def resume(
    conn: Connection, endpoint_id: str, account_id: str, *, by: str, now: datetime, rules: Rules
) -> list[Transition]:
    """Resume a paused, failing or disabled endpoint: ``active`` at once (its waiting events go
    out in order; a failing one's outage is replayed as on recovery). Idempotent."""
    return change(
        conn,
        endpoint_id,
        account_id,
        lambda h: machine.resume(h, now, by=by),
        now=now,
        rules=rules,
    )


def set_enabled(
    conn: Connection,
    endpoint_id: str,
    account_id: str,
    enabled: bool,
    *,
    by: str,
    now: datetime,
    rules: Rules,
) -> list[Transition]:
    """Switch delivery off (``disabled`` by hand: waiting deliveries end not delivered) or on
    (a disabled endpoint is resumed), so the ``enabled`` flag and the state never disagree."""
    current = conn.execute(
        select(endpoints.c.state).where(endpoints.c.id == endpoint_id)
    ).scalar_one_or_none()
    if enabled and current != EndpointState.DISABLED.value:
        return []
    fn = machine.resume if enabled else machine.disable
    return change(conn, endpoint_id, account_id, lambda h: fn(h, now, by=by), now=now, rules=rules)


def forget(conn: Connection, endpoint_id: str) -> None:
    """Remove a deleted endpoint's health row and event log."""
    conn.execute(endpoint_health.delete().where(H.endpoint_id == endpoint_id))
    conn.execute(endpoint_events.delete().where(endpoint_events.c.endpoint_id == endpoint_id))
