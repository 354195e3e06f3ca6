"""Published events and their fan-out into deliveries (the write side of publishing)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from callhook.store import dialect
from callhook.store.tables import call_sequences, events


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    account_id: str
    event: str
    pbx_id: str
    call_id: str | None
    sequence: int | None
    idempotency_key: str | None
    created_at: datetime
    body: bytes
    skip_reason: str | None


def next_sequences(conn: Connection, calls: Sequence[tuple[str, str]]) -> list[int]:
    """Sequence numbers for events of ``(account_id, call_id)``, in the given order.

    A call's events are numbered 1, 2, 3… in commit order, across batches and publishers.
    """
    wanted = Counter(calls)
    distinct = list(wanted)
    last = dict(
        zip(
            distinct,
            dialect.add_to_counters(
                conn,
                call_sequences,
                [{"account_id": a, "call_id": c} for a, c in distinct],
                "last_sequence",
                [wanted[call] for call in distinct],
            ),
            strict=True,
        )
    )
    nxt = {call: last[call] - wanted[call] + 1 for call in distinct}
    out = []
    for call in calls:
        out.append(nxt[call])
        nxt[call] += 1
    return out


def find_idempotent(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Event ids already published under these (account_id, idempotency_key) pairs."""
    pairs = list(set(keys))
    if not pairs:
        return {}
    # Per-column IN lists (served by the unique index), not a row-value IN (a full scan on
    # SQLite); the exact pairs are picked out here.
    rows = conn.execute(
        select(events.c.account_id, events.c.idempotency_key, events.c.id).where(
            events.c.account_id.in_({a for a, _ in pairs}),
            events.c.idempotency_key.in_({k for _, k in pairs}),
        )
    )
    wanted = set(pairs)
    return {key: r.id for r in rows if (key := (r.account_id, r.idempotency_key)) in wanted}


def insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(events.insert(), rows)


def _from_row(r: Any) -> StoredEvent:
    return StoredEvent(
        id=r.id,
        account_id=r.account_id,
        event=r.event,
        pbx_id=r.pbx_id,
        call_id=r.call_id,
        sequence=r.sequence,
        idempotency_key=r.idempotency_key,
        created_at=r.created_at,
        body=bytes(r.body),
        skip_reason=r.skip_reason,
    )


def get(conn: Connection, event_id: str) -> StoredEvent | None:
    row = conn.execute(select(events).where(events.c.id == event_id)).first()
    return None if row is None else _from_row(row)


def for_pbx_id(conn: Connection, account_id: str, pbx_id: str) -> list[StoredEvent]:
    """Every event of one call (or record): matched on ``pbx_id`` or ``call_id``, in order."""
    rows = conn.execute(
        select(events)
        .where(
            events.c.account_id == account_id,
            (events.c.pbx_id == pbx_id) | (events.c.call_id == pbx_id),
        )
        .order_by(events.c.sequence.is_(None), events.c.sequence, events.c.created_at, events.c.id)
    )
    return [_from_row(r) for r in rows]


def recent(conn: Connection, account_id: str | None, limit: int = 50) -> list[StoredEvent]:
    query = select(events).order_by(events.c.created_at.desc(), events.c.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(events.c.account_id == account_id)
    return [_from_row(r) for r in conn.execute(query)]
