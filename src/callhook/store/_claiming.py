"""Claiming: the statements that take due deliveries under a lease, and the read of what
sending them needs. ``callhook.store.queue`` is the public face (it re-exports ``claim``,
``claim_rows``, ``load_claimed``, ``ClaimedJob`` and ``ClaimedRow``); this module holds their SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Integer, TextClause, bindparam, or_, select, text
from sqlalchemy.sql.selectable import TextualSelect

from callhook.core import ordering as ordering_rules
from callhook.core import stored_body
from callhook.core.outcome import DeliveryStatus
from callhook.core.retry import RetryPolicy
from callhook.errors import StoreError
from callhook.events.names import TEST_EVENT
from callhook.store.dialect import FastQuery
from callhook.store.secretbox import SecretBox
from callhook.store.tables import deliveries, endpoint_secrets, endpoints, events
from callhook.store.types import StoredId, UTCDateTime


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """Everything one attempt needs, read for a claim (``load_claimed``)."""

    delivery_id: str
    claim_id: str
    event_id: str
    account_id: str
    endpoint_id: str
    event: str
    attempt_number: int
    window_start: datetime
    body: bytes
    url: str | None
    enabled: bool
    retry_policy: str
    secrets: tuple[str, ...]
    # Ordered delivery per call (issue 14): the event's call and sequence (headers), the
    # sequence it is sent out of order behind, and its endpoint's maximum age for its group.
    call_id: str | None = None
    sequence: int | None = None
    previous_sequence: int | None = None
    max_age: timedelta | None = None
    #: Whether the delivery held its call's line when its claim was read (``store.ordering``):
    #: finishing it hands the line on. (A sweep may bypass it meanwhile; ``ordering.promote``
    #: checks.)
    holds_line: bool = False
    #: Whether its endpoint's current signing secret could not be decrypted with this
    #: process's master key (``secrets`` then holds only rotated-out ones, if any): not to be
    #: sent by this process (``delivery.claims.Claims`` gives it back and leaves the endpoint
    #: out for a while; endpoints a claim spends tokens or a probe on it checks in the claim).
    unreadable_secret: bool = False


# The claim's statements are built once with bound parameters (``expanding`` for the lists):
# building them per claim, with a literal per id, cost more than running them (profiled).
_NOW = bindparam("now", type_=UTCDateTime)


# The fair claim. Oldest-due-first across the whole table let one endpoint's backlog (or sixty
# slow endpoints' backlogs) come before a healthy endpoint's one new event, for as long as it
# took to claim them all. Instead:
#
# 1. ``walk`` (``_walk``): the endpoints that have pending deliveries, found by skipping through the
#    partial index ``ix_deliveries_pending_endpoint`` one endpoint at a time (a recursive "next
#    endpoint id after this one": one index seek per endpoint, never a read of their rows);
# 2. ``candidates``: for each of those endpoints (but the excluded ones: no room in the worker,
#    breaker open) its oldest due rows, at most ``:per_endpoint``: an index range read each
#    (PostgreSQL: LATERAL, locked SKIP LOCKED; SQLite: a correlated subquery);
# 3. ``chosen``: the first ``:limit`` of those in turns, every endpoint's oldest row first,
#    then every endpoint's second, …; within a turn oldest due first.
#
# "Oldest" is by ``claim_key`` (issue 14, ``core.ordering.claim_key``): the due time, plus the
# aging (10 minutes) for bulk events, so within an endpoint and within a turn call-control events
# come first and bulk ones are never starved. The per-endpoint read walks
# ``ix_deliveries_pending_endpoint`` (endpoint_id, claim_key, next_attempt_at): rows with a key up
# to now are all due; past that it skips only rows falling due within the aging window (retries
# of call-control events due in the next 10 minutes, interleaved with the bulk keys). On SQLite
# that read is held to the index too (without statistics its planner took
# ``ix_deliveries_due``, every due row per endpoint).
#
# So an endpoint's due event is among the first claimed as soon as fewer than ``limit``
# endpoints have due work ahead of it in its turn, whatever their backlogs.
_PENDING = f"'{DeliveryStatus.PENDING.value}'"  # a literal: the partial index's own condition
# SQLite's planner picks ``ix_deliveries_due (status, …)`` for the pending rows' smallest
# ``endpoint_id`` and reads every pending row per step (measured: 60–150 ms per claim at 20,000
# pending); ``INDEXED BY`` holds it to the seek. PostgreSQL finds the partial index itself.
_PENDING_INDEX = {
    "sqlite": "INDEXED BY ix_deliveries_pending_endpoint",
    "postgresql": "",
}


def _one_endpoint_statement(conn: Connection, *, urgent: bool = False) -> FastQuery:
    """A claim for one endpoint alone (a throttled endpoint's allowance, a failing endpoint's
    probe; with ``urgent``, only rows whose claim key has come: call-control events and bulk
    ones aged in): its oldest due deliveries by claim key, at most ``:limit``.

    A range read of ``ix_deliveries_pending_endpoint`` (endpoint_id, claim_key, …), written as
    that partial index spells its condition (a literal status) and, on SQLite, held to it: with
    a bound status, or left to its planner, SQLite read every due row of every endpoint through
    ``ix_deliveries_due`` and sorted them (``EXPLAIN QUERY PLAN``)."""
    name = conn.dialect.name
    urgent_only = "AND claim_key <= :now " if urgent else ""
    lock = "FOR UPDATE SKIP LOCKED" if name == "postgresql" else ""
    sql = f"""
UPDATE deliveries
SET claim_id = :claim_id, claimed_by = :worker_id, lease_until = :lease_until
WHERE id IN (
    SELECT id FROM deliveries {_PENDING_INDEX[name]}
    WHERE status = {_PENDING} AND endpoint_id = :only AND next_attempt_at <= :now
        AND (lease_until IS NULL OR lease_until <= :now) {urgent_only}
    ORDER BY endpoint_id, claim_key LIMIT :limit {lock}
)
RETURNING id, endpoint_id"""  # noqa: S608 (constants only, no input)
    return FastQuery(
        _returning_ids(
            text(sql).bindparams(
                bindparam("now", type_=UTCDateTime),
                bindparam("lease_until", type_=UTCDateTime),
                bindparam("only", type_=StoredId("ep")),
                bindparam("limit", type_=Integer),
            )
        )
    )


def _returning_ids(statement: TextClause) -> TextualSelect:
    """``statement`` with its ``RETURNING id, endpoint_id`` read as ids (``types.StoredId``)."""
    return statement.columns(id=StoredId("dlv"), endpoint_id=StoredId("ep"))


def _walk(dialect_name: str) -> str:
    hint = _PENDING_INDEX[dialect_name]
    return f"""
walk(endpoint_id) AS (
    SELECT MIN(endpoint_id) FROM deliveries {hint} WHERE status = {_PENDING}
    UNION ALL
    SELECT (
        SELECT MIN(d.endpoint_id) FROM deliveries d {hint}
        WHERE d.status = {_PENDING} AND d.endpoint_id > walk.endpoint_id
    )
    FROM walk WHERE walk.endpoint_id IS NOT NULL
)"""  # noqa: S608 (constants only, no input)


# One endpoint's oldest due rows, ordered as ``ix_deliveries_pending_endpoint`` is. SQLite reads
# that index (tested). PostgreSQL chooses by its statistics between it and ``ix_deliveries_due``
# filtered on the endpoint (measured on 20,000 pending over 10 endpoints: the latter, 17–20 ms
# per claim of 256; pinning it to the partial index made that 35–65 ms there).
_DUE = f"""
        d2.status = {_PENDING} AND d2.endpoint_id = walk.endpoint_id
        AND d2.next_attempt_at <= :now
        AND (d2.lease_until IS NULL OR d2.lease_until <= :now)
        AND (walk.endpoint_id NOT IN :held OR d2.event = '{TEST_EVENT}')
        ORDER BY d2.endpoint_id, d2.claim_key LIMIT :per_endpoint"""
_CANDIDATES = {
    "postgresql": f"""
candidates AS (
    SELECT c.id, c.endpoint_id, c.claim_key
    FROM walk CROSS JOIN LATERAL (
        SELECT d2.id, d2.endpoint_id, d2.claim_key FROM deliveries d2 WHERE {_DUE}
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE walk.endpoint_id IS NOT NULL AND walk.endpoint_id NOT IN :excluded
)""",  # noqa: S608 (constants only, no input)
    "sqlite": f"""
candidates AS (
    SELECT d.id, d.endpoint_id, d.claim_key
    FROM walk JOIN deliveries d ON d.id IN (
        SELECT d2.id FROM deliveries d2 INDEXED BY ix_deliveries_pending_endpoint
        WHERE {_DUE}
    )
    WHERE walk.endpoint_id IS NOT NULL AND walk.endpoint_id NOT IN :excluded
)""",  # noqa: S608 (constants only, no input)
}
_CHOSEN = """
chosen AS (
    SELECT id FROM (
        SELECT id, claim_key,
               ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY claim_key) AS turn
        FROM candidates
    ) ranked
    ORDER BY turn, claim_key
    LIMIT :limit
)"""
_UPDATE = """
UPDATE deliveries
SET claim_id = :claim_id, claimed_by = :worker_id, lease_until = :lease_until
WHERE id IN (SELECT id FROM chosen)
RETURNING id, endpoint_id"""


def _claim_statement(conn: Connection) -> FastQuery:
    name = conn.dialect.name
    sql = f"WITH RECURSIVE {_walk(name)},{_CANDIDATES[name]},{_CHOSEN}{_UPDATE}"
    return FastQuery(
        _returning_ids(
            text(sql).bindparams(
                bindparam("now", type_=UTCDateTime),
                bindparam("lease_until", type_=UTCDateTime),
                bindparam("excluded", expanding=True, type_=StoredId("ep")),
                # Held by the store (paused, failing, throttled): their test events still go.
                bindparam("held", expanding=True, type_=StoredId("ep")),
                bindparam("per_endpoint", type_=Integer),
                bindparam("limit", type_=Integer),
            )
        )
    )


_CLAIMS: dict[str, FastQuery] = {}

_CLAIMED = FastQuery(
    select(
        deliveries.c.id,
        deliveries.c.event_id,
        deliveries.c.account_id,
        deliveries.c.endpoint_id,
        deliveries.c.event,
        deliveries.c.attempts,
        deliveries.c.window_start,
        events.c.body,
        events.c.pbx_id,
        events.c.created_at,
        events.c.call_id.label("event_call_id"),
        events.c.sequence.label("event_sequence"),
        endpoints.c.url,
        endpoints.c.enabled,
        endpoints.c.retry_policy,
        deliveries.c.call_id,
        deliveries.c.sequence,
        deliveries.c.previous_sequence,
        endpoints.c.max_age_call_control_seconds,
        endpoints.c.max_age_bulk_seconds,
        deliveries.c.holds_line,
    )
    .join(events, events.c.id == deliveries.c.event_id)
    .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id, isouter=True)
    # By primary key: there is no index on claim_id, so ``claim_id = ?`` alone scanned the
    # whole table on every claim (the worker slowed as delivered rows piled up). The claim id
    # too: a row whose lease ran out before this read and that another worker claimed is not
    # this worker's any more.
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.claim_id == bindparam("claim_id"),
    )
)


def claim(
    conn: Connection,
    *,
    worker_id: str,
    claim_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    box: SecretBox,
    secret_cache: dict[str, str] | None = None,
    exclude_endpoints: Collection[str] = (),
    hold_endpoints: Collection[str] = (),
    only_endpoint: str | None = None,
    urgent_only: bool = False,
    per_endpoint: int = 32,
) -> list[ClaimedJob]:
    """``claim_rows`` and ``load_claimed`` in one transaction (the arguments are theirs)."""
    claimed = claim_rows(
        conn,
        worker_id=worker_id,
        claim_id=claim_id,
        now=now,
        lease=lease,
        limit=limit,
        exclude_endpoints=exclude_endpoints,
        hold_endpoints=hold_endpoints,
        only_endpoint=only_endpoint,
        urgent_only=urgent_only,
        per_endpoint=per_endpoint,
    )
    return load_claimed(
        conn, [row.id for row in claimed], claim_id=claim_id, box=box, now=now, cache=secret_cache
    )


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A delivery a claim took: its id and endpoint."""

    id: str
    endpoint_id: str


def claim_rows(
    conn: Connection,
    *,
    worker_id: str,
    claim_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    exclude_endpoints: Collection[str] = (),
    hold_endpoints: Collection[str] = (),
    only_endpoint: str | None = None,
    urgent_only: bool = False,
    per_endpoint: int = 32,
) -> list[ClaimedRow]:
    """Claim up to ``limit`` due deliveries, fairly across endpoints: stamp them with
    ``claim_id``, ``worker_id`` and a lease until ``now + lease``; returns what was claimed.

    At most ``per_endpoint`` per endpoint (the worker's per-endpoint limit: more could not
    start anyway), taken in turns: every endpoint's oldest due delivery, then every endpoint's
    second, and so on (see ``_WALK`` above: index reads only). ``exclude_endpoints`` are
    skipped: endpoints the worker has no room for right now. ``hold_endpoints`` too (paused,
    failing or throttled: ``callhook.store.claim_plan.plan_claim``), except for their test
    events. ``only_endpoint`` claims for that endpoint alone, oldest due first (a throttled
    endpoint's allowance, a failing endpoint's probe); with ``urgent_only``, only its rows whose
    claim key has come (call-control events, bulk ones aged in: ``core.ordering.claim_key``), a
    range read of ``ix_deliveries_pending_endpoint``.

    Only the rows' stamps are written here; ``load_claimed`` reads what sending needs, and may
    run after this transaction commits (a claimed row is the claimer's until its lease ends), so
    a worker holds SQLite's one writer for the stamping alone.
    """
    if limit <= 0:
        return []  # (SQLite reads a negative LIMIT as "no limit")
    key = f"{conn.dialect.name}:{only_endpoint is not None}:{urgent_only}"
    statement = _CLAIMS.get(key)
    if statement is None:
        if only_endpoint is not None:
            statement = _one_endpoint_statement(conn, urgent=urgent_only)
        else:
            statement = _claim_statement(conn)
        _CLAIMS[key] = statement
    return [
        ClaimedRow(row[0], row[1])
        for row in statement.rows(
            conn,
            {
                "now": now,
                "excluded": list(exclude_endpoints),
                "held": list(hold_endpoints),
                "only": only_endpoint,
                "per_endpoint": max(1, per_endpoint),
                "limit": limit,
                "claim_id": claim_id,
                "worker_id": worker_id,
                "lease_until": now + lease,
            },
        )
    ]


def load_claimed(
    conn: Connection,
    ids: Sequence[str],
    *,
    claim_id: str,
    box: SecretBox,
    now: datetime,
    cache: dict[str, str] | None = None,
) -> list[ClaimedJob]:
    """What sending needs for the deliveries ``ids`` claimed under ``claim_id``: each event's
    body (unpacked), its endpoint's URL and state, the endpoint's signing secrets now
    (decrypted; ``cache`` keeps them by secret id), as they are now. Rows no longer held under
    ``claim_id`` (lease ran out and another worker claimed them; deleted) are left out. Reads
    only: any transaction will do. A job whose endpoint's current secret ``box`` cannot
    decrypt is marked ``unreadable_secret`` (the claim gives it back: ``Claims``); rotated-out
    secrets it cannot decrypt are left out of the others' (they cannot sign here)."""
    if not ids:
        return []
    rows = _CLAIMED.rows(conn, {"ids": list(ids), "claim_id": claim_id})
    secrets, unreadable = _secrets_for(conn, {r[3] for r in rows}, now, box, cache)
    return [
        ClaimedJob(
            delivery_id=delivery_id,
            claim_id=claim_id,
            event_id=event_id,
            account_id=account_id,
            endpoint_id=endpoint_id,
            event=event,
            attempt_number=attempts + 1,
            window_start=window_start,
            body=stored_body.unpack(
                bytes(body),
                id=event_id,
                event=event,
                pbx_id=pbx_id,
                account_id=account_id,
                created_at=created_at,
                call_id=event_call_id,
                sequence=event_sequence,
            ),
            url=url,
            enabled=bool(enabled) if enabled is not None else False,
            retry_policy=retry_policy or RetryPolicy.EXPONENTIAL.value,
            secrets=() if endpoint_id in unreadable else tuple(secrets.get(endpoint_id, ())),
            unreadable_secret=endpoint_id in unreadable,
            call_id=call_id,
            sequence=sequence,
            previous_sequence=previous_sequence,
            max_age=ordering_rules.max_age_of(event, max_age_cc, max_age_bulk),
            holds_line=bool(holds_line),
        )
        for (
            delivery_id,
            event_id,
            account_id,
            endpoint_id,
            event,
            attempts,
            window_start,
            body,
            pbx_id,
            created_at,
            event_call_id,
            event_sequence,
            url,
            enabled,
            retry_policy,
            call_id,
            sequence,
            previous_sequence,
            max_age_cc,
            max_age_bulk,
            holds_line,
        ) in rows
    ]


_SECRETS = FastQuery(
    select(
        endpoint_secrets.c.id,
        endpoint_secrets.c.endpoint_id,
        endpoint_secrets.c.secret_encrypted,
        endpoint_secrets.c.expires_at.is_(None).label("current"),
    )
    .where(
        endpoint_secrets.c.endpoint_id.in_(bindparam("endpoints", expanding=True)),
        or_(endpoint_secrets.c.expires_at.is_(None), endpoint_secrets.c.expires_at > _NOW),
    )
    .order_by(
        # The current secret first even when a rotation made its successor in the same instant.
        endpoint_secrets.c.expires_at.is_(None).desc(),
        endpoint_secrets.c.created_at.desc(),
        endpoint_secrets.c.id.desc(),
    )
)


def _secrets_for(
    conn: Connection,
    endpoint_ids: set[str],
    now: datetime,
    box: SecretBox,
    cache: dict[str, str] | None,
) -> tuple[dict[str, list[str]], set[str]]:
    """Each endpoint's signing secrets now, newest first (decrypted), and the endpoints whose
    current secret this ``box`` cannot decrypt (stored under another master key). A rotated-out
    secret it cannot decrypt is left out: the current one signs. One such secret used to stop
    every endpoint's deliveries (a new operator's try, 2026-11-30)."""
    rows = _SECRETS.rows(conn, {"endpoints": list(endpoint_ids), "now": now})
    out: dict[str, list[str]] = {}
    unreadable: set[str] = set()
    for secret_id, endpoint_id, encrypted, current in rows:
        # Secret rows never change once written, so decrypting each id once is safe.
        if cache is not None and secret_id in cache:
            plain = cache[secret_id]
        else:
            try:
                plain = box.decrypt(encrypted)
            except StoreError:
                if current:
                    unreadable.add(endpoint_id)
                continue
            if cache is not None:
                cache[secret_id] = plain
        out.setdefault(endpoint_id, []).append(plain)
    return out, unreadable


#: The fenced completion, built once: matching ``claim_id`` is what keeps a stale worker out.
