"""Ordered delivery per call (issue 14): the line of each (endpoint, call) in the queue table.

The rules are ``callhook.core.ordering``'s; this module is their SQL. A line's rows are the
deliveries of one call to one endpoint with ``holds_line`` true (at most one: the delivery that
may be claimed) or ``status = 'waiting'`` (the later ones, never claimed). The partial index
``ix_deliveries_line`` holds exactly those rows, so it stays as small as the number of calls
with undelivered events, and every statement here is a range read of it or a primary-key write:

* publish: ``taken_lines`` — which lines of a batch already have rows (one indexed read);
* completion: ``queue.complete``'s update clears a finished holder's flag, then ``promote``
  gives each such line to its lowest waiting sequence (one indexed update per line), in the
  completing transaction;
* housekeeping: ``sweep`` — holders past their endpoint's head-of-line bound with rows waiting
  behind them are bypassed, holders past their maximum age expire, lines a bulk ``requeue``
  marked get their holder (``ix_deliveries_unsettled``, a partial index of the marked rows).

**Concurrency.** On SQLite a write transaction excludes every other writer, so a publish and a
completion of the same line cannot interleave. On PostgreSQL each of the three takes a
transaction-scoped advisory lock per line (``dialect.lock_keys``, sorted) *before* touching any
delivery row, so a publish that reads "the line is free" and a completion that reads "nothing
waits" cannot both happen: one waits for the other, and after the lock every statement sees the
other's commit (READ COMMITTED takes a fresh snapshot per statement). Taking the line locks
first everywhere is also what keeps the three deadlock-free. ``requeue`` alone takes none (it
runs under the health-row lock, which completions take after theirs): it only adds marked
waiting rows, which the sweep settles (``_settle``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    String,
    bindparam,
    case,
    or_,
    select,
    text,
    update,
)

from callhook.core import ordering as rules
from callhook.core.outcome import DeliveryStatus, ErrorClass
from callhook.store import dialect
from callhook.store.tables import deliveries, endpoints
from callhook.store.types import StoredId, time_encoder

#: Whose line: the endpoint a delivery goes to.
line_owner = deliveries.c.endpoint_id
#: The partial index's predicate, spelled as literally as the index spells it: SQLite uses a
#: partial index only when the query repeats its WHERE terms.
IN_LINE = text("(deliveries.holds_line OR deliveries.status = 'waiting')")

Line = tuple[str, str]  # (endpoint id, call id)


def lock_lines(conn: Connection, lines: Iterable[Line]) -> None:
    """Serialize with every other transaction on these lines (PostgreSQL; see the docstring)."""
    dialect.lock_keys(conn, "line", [f"{owner}\x1f{call}" for owner, call in lines])


def taken_lines(conn: Connection, lines: Collection[Line]) -> set[Line]:
    """The lines among ``lines`` that already hold or queue a delivery (call under the lock)."""
    if not lines:
        return set()
    rows = conn.execute(
        select(line_owner, deliveries.c.call_id)
        .where(
            IN_LINE,
            line_owner.in_({o for o, _ in lines}),
            deliveries.c.call_id.in_({c for _, c in lines}),
        )
        .distinct()
    )
    wanted = set(lines)
    return {(o, c) for o, c in rows if (o, c) in wanted}


# Built as text so every value is a named parameter or a literal (``FastStatement``'s rule); both
# subqueries (the line's lowest waiting sequence; whether the line has a holder) are range reads
# of the partial line index.
_LINE = (
    "FROM deliveries WHERE (deliveries.holds_line OR deliveries.status = 'waiting') "
    "AND endpoint_id = :owner AND call_id = :call"
)
_PROMOTE = dialect.FastStatement(
    text(
        f"UPDATE deliveries SET status = '{DeliveryStatus.PENDING.value}', "  # noqa: S608
        "holds_line = TRUE, line_since = :now, previous_sequence = :previous "
        f"WHERE id = (SELECT id {_LINE} AND status = '{DeliveryStatus.WAITING.value}' "
        f"ORDER BY sequence LIMIT 1) AND NOT EXISTS (SELECT 1 {_LINE} AND holds_line)"
    ).bindparams(
        bindparam("now"),
        bindparam("previous"),
        bindparam("owner", type_=StoredId("ep")),
        bindparam("call"),
    )
)


def promote(conn: Connection, lines: Mapping[Line, int | None], *, now: datetime) -> int:
    """Give each line that has no holder to its lowest waiting sequence; the value is the
    sequence it is sent out of order behind (``X-Webhook-Previous-Sequence``), or None.
    Call after ``lock_lines`` for them, once their finished holder let go (``queue.complete``
    in the same statement batch; ``sweep``). A line that has a holder is left alone: a worker
    whose holder was bypassed by the sweep meanwhile cannot make a second one. One
    ``executemany`` (an indexed update per line). Returns how many deliveries became
    claimable."""
    if not lines:
        return 0
    stamp = time_encoder(conn.dialect.name)(now)
    return _PROMOTE.executemany(
        conn,
        [
            {"owner": owner, "call": call, "now": stamp, "previous": previous}
            for (owner, call), previous in sorted(lines.items(), key=lambda kv: kv[0])
        ],
    )


def free_lines(conn: Connection, endpoint_id: str) -> int:
    """The endpoint switched to ``ordering: none``: every one of its lines ends — waiting
    deliveries become pending (claimable at once, in parallel, as the new setting says) and
    holders stop holding. Without it they waited behind a retrying holder until the bound ran
    out. Locks the lines first (PostgreSQL), like every writer of a line; a publish that read
    the old setting and queues behind a line after this finds it free and takes it, which the
    next completion hands on as usual. Returns how many deliveries it changed."""
    lines = [
        (owner, call)
        for owner, call in conn.execute(
            select(line_owner, deliveries.c.call_id)
            .where(IN_LINE, line_owner == endpoint_id)
            .distinct()
        )
    ]
    if not lines:
        return 0
    lock_lines(conn, lines)
    result = conn.execute(
        update(deliveries)
        .where(IN_LINE, line_owner == endpoint_id)
        .values(
            status=case(
                (deliveries.c.status == DeliveryStatus.WAITING, DeliveryStatus.PENDING.value),
                else_=deliveries.c.status,
            ),
            holds_line=False,
            line_since=None,
        )
    )
    return int(result.rowcount)


def requeue(
    conn: Connection,
    which: ColumnElement[bool],
    *,
    now: datetime,
    due: Callable[[str], datetime],
) -> int:
    """Queue finished deliveries again (a redelivery of a time window, an outage's replay)
    through their calls' lines, so a call's events reach an endpoint that orders per call one
    after another again. Deliveries of a call to an endpoint that orders per call become
    ``waiting``, marked unsettled (``line_since`` set, which a waiting row otherwise never
    has); the next ``sweep`` (a worker's, every second) gives each such line that has no holder
    to its lowest waiting sequence, and a line with a holder hands on as usual when that one
    finishes. Deliveries with no call, or to an endpoint with ``ordering: none``, are pending
    at once. Before, all of them were pending at once and a call arrived in any order.

    No line lock is taken here: the replay runs inside a health transition, under the endpoint
    health row's lock, and completions take line locks before that row's — taking line locks
    here deadlocked against them (PostgreSQL). Waiting rows need none: a promotion is one
    guarded statement, and the sweep settles what one missed.

    ``which``: a condition on ``deliveries`` choosing them (only finished ones change: each row
    is fenced on its status). ``due(id)`` gives each its due time (``next_attempt_at``; the
    claim key follows from it and the event's group); each gets a new retry window from
    ``now``. No list of ids is sent (a window may hold more rows than SQLite takes parameters).
    Returns how many were queued again."""
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.call_id, deliveries.c.event, endpoints.c.ordering)
        .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id, isouter=True)
        .where(which, deliveries.c.status.in_(_FINISHED_STATES))
    ).all()
    stamp = time_encoder(conn.dialect.name)
    changes = []
    for r in rows:
        in_line = r.call_id is not None and r.ordering == rules.Ordering.PER_CALL.value
        status = DeliveryStatus.WAITING if in_line else DeliveryStatus.PENDING
        changes.append(
            {
                "id": r.id,
                "status": status.value,
                "since": stamp(now) if in_line else None,
                "due": stamp(due(r.id)),
                "key": stamp(rules.claim_key(rules.group_of(r.event), due(r.id))),
                "now": stamp(now),
            }
        )
    return _REQUEUE.executemany(conn, changes)


def _unsettled(conn: Connection, limit: int) -> list[Line]:
    """Lines with rows ``requeue`` left waiting that no sweep has settled yet."""
    rows = conn.execute(_UNSETTLED[conn.dialect.name], {"limit": limit})
    return [(owner, call) for owner, call in rows]


# Spelled as ``ix_deliveries_unsettled`` spells its condition (SQLite matches it literally), and
# held to it on SQLite (else its planner may walk ``ix_deliveries_due``, every waiting row).
_UNSETTLED = {
    name: text(
        f"SELECT DISTINCT endpoint_id, call_id FROM deliveries {hint} "  # noqa: S608
        "WHERE status = 'waiting' AND line_since IS NOT NULL LIMIT :limit"
    )
    .bindparams(bindparam("limit", type_=Integer))
    .columns(endpoint_id=StoredId("ep"), call_id=String())
    for name, hint in (("sqlite", "INDEXED BY ix_deliveries_unsettled"), ("postgresql", ""))
}


_SETTLE = dialect.FastStatement(
    text(
        "UPDATE deliveries SET line_since = NULL "  # noqa: S608
        f"WHERE status = '{DeliveryStatus.WAITING.value}' AND endpoint_id = :owner "
        "AND call_id = :call AND line_since IS NOT NULL"
    ).bindparams(bindparam("owner", type_=StoredId("ep")), bindparam("call"))
)


def _settle(conn: Connection, lines: list[Line], now: datetime) -> int:
    """Clear the marks of ``lines``, then give each that has no holder to its lowest waiting
    sequence (call under the lines' locks); how many deliveries became claimable. In that
    order: a requeue takes no line lock, and on PostgreSQL each statement sees what committed
    before it — a row marked between a promotion and the clearing would have lost its mark
    without being promoted, and waited for ever."""
    _SETTLE.executemany(conn, [{"owner": o, "call": c} for o, c in sorted(lines)])
    return promote(conn, dict.fromkeys(lines), now=now)


_FINISHED_STATES = (
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.EXPIRED.value,
)


_FINISHED = ", ".join(f"'{s}'" for s in _FINISHED_STATES)
_REQUEUE = dialect.FastStatement(
    text(
        "UPDATE deliveries SET status = :status, holds_line = FALSE, line_since = :since, "  # noqa: S608
        "previous_sequence = NULL, next_attempt_at = :due, claim_key = :key, "
        "window_start = :now, delivered_at = NULL "
        f"WHERE id = :id AND status IN ({_FINISHED})"
    ).bindparams(
        bindparam("id", type_=StoredId("dlv")),
        bindparam("status"),
        bindparam("since"),
        bindparam("due"),
        bindparam("key"),
        bindparam("now"),
    )
)


@dataclass(frozen=True, slots=True)
class LinePolicy:
    """What ``sweep`` needs of an endpoint: its head-of-line bound and maximum ages."""

    bound: timedelta = rules.DEFAULT_BOUND
    expiry: rules.Expiry = field(default_factory=rules.Expiry)


@dataclass(frozen=True, slots=True)
class SweepReport:
    bypassed: int = 0
    expired: int = 0
    promoted: int = 0


def _overdue(
    conn: Connection, now: datetime, policies: Mapping[str, LinePolicy], limit: int
) -> tuple[list[tuple[str, Line]], list[tuple[str, Line, int]]]:
    """Holders to expire and holders past their bound: two reads of at most ``limit`` each.

    The bound runs only for a holder that has been attempted since it took its line (its first
    attempt there restarts ``line_since``: ``queue.complete``): one that has not — its endpoint
    paused, failing while another event is the probe, throttled or backlogged — is not holding
    its call back by failing, and bypassing it would send the call's events in parallel once the
    endpoint takes them again. So the first read takes attempted holders past the smallest
    bound in use, oldest line first; the second, only for endpoints with a maximum age, holders
    older (by their window) than that endpoint's smallest maximum age, oldest first. Neither
    reads holders the sweep cannot act on (a paused endpoint's thousand oldest lines filled a
    single read's ``limit``, and the lines of every other endpoint behind them were never
    swept)."""
    columns = (
        deliveries.c.id,
        line_owner,
        deliveries.c.call_id,
        deliveries.c.sequence,
        deliveries.c.line_since,
        deliveries.c.event,
        deliveries.c.window_start,
        deliveries.c.lease_until,
        deliveries.c.last_attempt_at,
    )
    holders = list(
        conn.execute(
            select(*columns)
            .where(
                IN_LINE,
                deliveries.c.holds_line,
                deliveries.c.last_attempt_at >= deliveries.c.line_since,
                deliveries.c.line_since <= now - _smallest_bound(policies),
            )
            .order_by(deliveries.c.line_since)
            .limit(limit)
        )
    )
    ages = {
        endpoint: min(a for a in (p.expiry.call_control, p.expiry.bulk) if a is not None)
        for endpoint, p in sorted(policies.items())
        if p.expiry.call_control or p.expiry.bulk
    }
    if ages:
        seen = {h.id for h in holders}
        holders += [
            h
            for h in conn.execute(
                select(*columns)
                .where(
                    IN_LINE,
                    deliveries.c.holds_line,
                    or_(
                        *(
                            (line_owner == endpoint) & (deliveries.c.window_start <= now - age)
                            for endpoint, age in ages.items()
                        )
                    ),
                )
                .order_by(deliveries.c.window_start)
                .limit(limit)
            )
            if h.id not in seen
        ]
    expire: list[tuple[str, Line]] = []
    overdue: list[tuple[str, Line, int]] = []
    for did, owner, call, seq, since, event, window_start, lease_until, last in holders:
        policy = policies.get(owner, _DEFAULT_POLICY)
        max_age = policy.expiry.max_age(rules.group_of(event))
        leased = lease_until is not None and lease_until > now
        if not leased and rules.is_expired(window_start, now, max_age):
            expire.append((did, (owner, call)))
        elif last is not None and last >= since and rules.bound_passed(since, now, policy.bound):
            overdue.append((did, (owner, call), seq))
    if overdue:  # only holders with deliveries waiting behind them are bypassed
        waiting = _lines_waiting(conn, [line for _, line, _ in overdue])
        overdue = [o for o in overdue if o[1] in waiting]
    return expire, overdue


def _smallest_bound(policies: Mapping[str, LinePolicy]) -> timedelta:
    """How long a holder must have held its line since its first attempt before the sweep can
    bypass it: the smallest bound in use. Without it, every sweep read the first 1,000 holders
    of a busy queue only to find none overdue (profiled: 1 % of the worker)."""
    return max(MIN_BOUND, min([rules.DEFAULT_BOUND, *(p.bound for p in policies.values())]))


def needs_sweep(
    conn: Connection, *, now: datetime, policies: Mapping[str, LinePolicy], limit: int = 1000
) -> bool:
    """Whether ``sweep`` would find anything (a read, so idle workers write nothing)."""
    expire, overdue = _overdue(conn, now, policies, limit)
    return bool(expire or overdue or _unsettled(conn, 1))


def sweep(
    conn: Connection,
    *,
    now: datetime,
    policies: Mapping[str, LinePolicy],
    limit: int = 1000,
) -> SweepReport:
    """Bypass holders past their endpoint's bound — counted from their first attempt on the
    line — with deliveries waiting behind them, and expire holders (not being attempted) past
    their maximum age; promote what follows.

    ``policies`` by endpoint id (missing: the defaults). Reads attempted holders past the
    smallest bound in use and, for endpoints with a maximum age, holders past it (``_overdue``),
    at most ``limit`` each, from the partial line index (as small as the number of calls with
    events still to deliver). Then settles up to ``limit`` lines that ``requeue`` left waiting
    (``promoted`` counts those too; ``ix_deliveries_unsettled``).
    """
    expire, overdue = _overdue(conn, now, policies, limit)
    unsettled = _unsettled(conn, limit)
    if not expire and not overdue and not unsettled:
        return SweepReport()
    # Every line this sweep writes, locked at once (sorted: no deadlock between sweeps).
    lock_lines(conn, [line for _, line in expire] + [line for _, line, _ in overdue] + unsettled)
    promote_lines: dict[Line, int | None] = {}
    expired = 0
    for did, line in expire:
        # Fenced: still the holder, still pending, not claimed since we looked.
        result = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id == did,
                deliveries.c.holds_line,
                deliveries.c.status == DeliveryStatus.PENDING,
                or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
            )
            .values(
                status=DeliveryStatus.EXPIRED.value,
                holds_line=False,
                line_since=None,
                next_attempt_at=None,
                last_error_class=ErrorClass.EXPIRED.value,
            )
        )
        if result.rowcount:
            expired += 1
            promote_lines[line] = None
    bypassed = 0
    for did, line, seq in overdue:
        result = conn.execute(
            update(deliveries)
            .where(deliveries.c.id == did, deliveries.c.holds_line)
            .values(holds_line=False, line_since=None)
        )
        if result.rowcount:
            bypassed += 1
            promote_lines[line] = seq
    promoted = promote(conn, promote_lines, now=now)
    if unsettled:
        promoted += _settle(conn, unsettled, now)
    return SweepReport(bypassed=bypassed, expired=expired, promoted=promoted)


#: The smallest bound an endpoint may set; the sweep does not look at younger holders.
MIN_BOUND = timedelta(seconds=1)
_DEFAULT_POLICY = LinePolicy()


def _lines_waiting(conn: Connection, lines: Collection[Line]) -> set[Line]:
    if not lines:
        return set()
    rows = conn.execute(
        select(line_owner, deliveries.c.call_id)
        .where(
            IN_LINE,
            deliveries.c.status == DeliveryStatus.WAITING,
            line_owner.in_({o for o, _ in lines}),
            deliveries.c.call_id.in_({c for _, c in lines}),
        )
        .distinct()
    )
    wanted = set(lines)
    return {(o, c) for o, c in rows if (o, c) in wanted}


def line_counts(conn: Connection) -> dict[str, int]:
    """How many deliveries hold a line and how many wait (for metrics and tests)."""
    rows = conn.execute(select(deliveries.c.status, deliveries.c.holds_line).where(IN_LINE)).all()
    return {
        "holding": sum(1 for _, h in rows if h),
        "waiting": sum(1 for s, _ in rows if s == DeliveryStatus.WAITING),
    }


_POLICIES = select(
    endpoints.c.id,
    endpoints.c.ordering_bound_seconds,
    endpoints.c.max_age_call_control_seconds,
    endpoints.c.max_age_bulk_seconds,
).where(
    or_(
        endpoints.c.ordering_bound_seconds != int(rules.DEFAULT_BOUND.total_seconds()),
        endpoints.c.max_age_call_control_seconds.is_not(None),
        endpoints.c.max_age_bulk_seconds.is_not(None),
    )
)


def policies(conn: Connection) -> dict[str, LinePolicy]:
    """Every endpoint whose bound or maximum ages differ from the defaults, by id (the others
    get ``LinePolicy()``). A read of the endpoints table: at most 20 rows per account."""
    out = {}
    for endpoint_id, bound, cc, bulk in conn.execute(_POLICIES):
        out[endpoint_id] = LinePolicy(
            bound=timedelta(seconds=bound),
            expiry=rules.Expiry(
                call_control=None if cc is None else timedelta(seconds=cc),
                bulk=None if bulk is None else timedelta(seconds=bulk),
            ),
        )
    return out
