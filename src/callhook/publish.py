"""Publishing: turn publish requests into committed events and delivery jobs.

``parse_publish_body`` is pure (bytes in, validated requests out, or a ``CallhookError``);
``Publisher.publish`` writes one batch all-or-nothing in one transaction and returns only after
the commit. The HTTP ingest route, ``callhook emit``, the simulator and in-process callers all
come through here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from callhook import events as catalog
from callhook.core import ordering
from callhook.core.clock import Clock, rfc3339
from callhook.core.ids import RandomBits, new_ids
from callhook.core.outcome import DeliveryStatus, SkipReason
from callhook.errors import InvalidRequest, PayloadInvalid, PermissionDenied
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store import ordering as line_store
from callhook.store.db import Database
from callhook.store.endpoints import Endpoint
from callhook.store.types import time_encoder


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One validated event to publish."""

    event: str
    pbx_id: str
    account_id: str | None
    data: dict[str, Any]
    idempotency_key: str | None = None
    #: Only this endpoint of the account (a test event to one endpoint); None: fan out.
    endpoint_id: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """The result of publishing one event."""

    id: str
    event: str
    pbx_id: str
    account_id: str
    duplicate: bool
    delivery_id: str | None
    skip_reason: str | None
    #: Every delivery made, one per endpoint (``delivery_id`` is the first: the primary
    #: endpoint's when it takes the event).
    delivery_ids: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event,
            "pbx_id": self.pbx_id,
            "account_id": self.account_id,
            "duplicate": self.duplicate,
            "delivery_id": self.delivery_id,
            "delivery_ids": list(self.delivery_ids),
            "skip_reason": self.skip_reason,
        }


# --- Parsing (pure) ----------------------------------------------------------------------------
def parse_event(item: object, *, where: str = "") -> PublishRequest:
    """Validate one publish request object; ``where`` prefixes field paths (``events[3].``).

    The rules are the catalog's, in one place for every publish path:
    :func:`callhook.events.validate_publish_item` (raises ``PayloadInvalid`` naming the field,
    or ``UnknownEvent``).
    """
    # Positional: keywords double the cost of this constructor, run once per event.
    return PublishRequest(*catalog.validate_publish_item(item, where=where))


def parse_publish_body(raw: bytes, *, max_events: int) -> list[PublishRequest]:
    """Parse an ingest body: one event object, or ``{"events": [...]}`` (1..max_events)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("Request body is not valid JSON.") from exc
    if not isinstance(doc, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    if "events" in doc:
        if set(doc) != {"events"}:
            raise InvalidRequest('A batch is {"events": [...]} with no other fields.')
        items = doc["events"]
        if not isinstance(items, list) or not items:
            raise InvalidRequest('"events" must be a non-empty list.')
        if len(items) > max_events:
            raise InvalidRequest(f"A batch holds at most {max_events} events, not {len(items)}.")
        return [parse_event(item, where=f"events[{i}].") for i, item in enumerate(items)]
    return [parse_event(doc)]


def bind_accounts(
    requests: Sequence[PublishRequest], *, token_account: str | None
) -> list[PublishRequest]:
    """Apply the publisher's account: a bound token publishes for its account only."""
    out = []
    for i, req in enumerate(requests):
        where = f"events[{i}]." if len(requests) > 1 else ""
        if token_account is not None:
            if req.account_id is not None and req.account_id != token_account:
                raise PermissionDenied("This token may publish for its own account only.")
            req = PublishRequest(
                req.event, req.pbx_id, token_account, req.data, req.idempotency_key
            )
        elif req.account_id is None:
            raise PayloadInvalid(
                f"{where}account_id: field required for a platform token",
                field=f"{where}account_id",
            )
        out.append(req)
    return out


def delivery_body(
    *,
    event_id: str,
    req: PublishRequest,
    account_id: str,
    created_at: str,
    call_id: str | None,
    sequence: int | None,
) -> bytes:
    """The exact bytes every attempt of this event sends."""
    body: dict[str, Any] = {
        "id": event_id,
        "event": req.event,
        "pbx_id": req.pbx_id,
        "account_id": account_id,
        "created_at": created_at,
    }
    if call_id is not None:
        body["call_id"] = call_id
        body["sequence"] = sequence
    body["data"] = req.data
    return orjson.dumps(body)


# --- Writing -----------------------------------------------------------------------------------
class Publisher:
    """Commits events and their delivery jobs; tells listeners (idle workers) afterwards."""

    def __init__(self, db: Database, *, clock: Clock, rng: RandomBits) -> None:
        self._db = db
        self._clock = clock
        self._rng = rng
        self._listeners: list[Callable[[], None]] = []

    def on_publish(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) after each commit that queued deliveries."""
        self._listeners.append(listener)

    def publish(self, requests: Sequence[PublishRequest]) -> list[Published]:
        """Publish all or nothing; each request carries its ``account_id`` (bind_accounts)."""
        for attempt in range(2):
            try:
                with self._db.write() as conn:
                    results = self._publish(conn, requests)
                break
            except IntegrityError:
                # A concurrent publish took the same idempotency key between our check and
                # insert; the second pass finds it and returns the original id.
                if attempt == 1:
                    raise
        if any(r.delivery_id for r in results):
            self.notify()
        return results

    def primary_endpoint_id(self, account_id: str) -> str | None:
        """The id of the account's primary endpoint (None without one)."""
        with self._db.read() as conn:
            endpoint = endpoint_store.primary(conn, account_id)
        return None if endpoint is None else endpoint.id

    def notify(self) -> None:
        """Tell listeners that deliveries are due now (after a publish or a redelivery)."""
        for listener in self._listeners:
            listener()

    def _publish(self, conn: Connection, requests: Sequence[PublishRequest]) -> list[Published]:
        now = self._clock.now()
        created_at = rfc3339(now)
        # Which accounts exist, and where each one's events go (read in this transaction).
        targets = endpoint_store.publish_targets(
            conn, {r.account_id for r in requests if r.account_id}
        )
        for i, req in enumerate(requests):
            if req.account_id not in targets:
                where = f"events[{i}]." if len(requests) > 1 else ""
                raise PayloadInvalid(
                    f"{where}account_id: unknown account {req.account_id!r}",
                    field=f"{where}account_id",
                )
        existing = event_store.find_idempotent(
            conn,
            (
                (r.account_id, r.idempotency_key)
                for r in requests
                if r.idempotency_key and r.account_id
            ),
        )
        # Pass 1: which requests are new (a key seen before, or earlier in this batch, is not).
        first_of_key: dict[tuple[str, str], int] = {}
        fresh: list[int] = []
        for i, req in enumerate(requests):
            key = (req.account_id or "", req.idempotency_key) if req.idempotency_key else None
            if key is not None and (key in existing or key in first_of_key):
                continue
            if key is not None:
                first_of_key[key] = i
            fresh.append(i)
        call_ids = {
            i: catalog.call_id_of(requests[i].event, requests[i].pbx_id, requests[i].data)
            for i in fresh
        }
        numbered = [i for i in fresh if call_ids[i] is not None]
        sequences = dict(
            zip(
                numbered,
                event_store.next_sequences(
                    conn, [(requests[i].account_id or "", call_ids[i] or "") for i in numbered]
                ),
                strict=True,
            )
        )
        # Pass 2: rows for the new events, results for all.
        stored_at = time_encoder(conn.dialect.name)(now)  # the rows go to the DB-API as is
        event_rows: list[dict[str, Any]] = []
        delivery_rows: list[dict[str, Any]] = []
        made: dict[int, Published] = {}
        plans = {
            i: fan_out(
                targets[requests[i].account_id or ""],
                requests[i].event,
                only=requests[i].endpoint_id,
            )
            for i in fresh
        }
        event_ids = iter(new_ids("evt", now, len(fresh), self._rng))
        delivery_ids = iter(
            new_ids("dlv", now, sum(len(plans[i].endpoint_ids) for i in fresh), self._rng)
        )
        encode = time_encoder(conn.dialect.name)
        claim_keys = {g: encode(ordering.claim_key(g, now)) for g in ordering.EventGroup}
        for i in fresh:
            req = requests[i]
            account_id = req.account_id or ""
            event_id = next(event_ids)
            plan = plans[i]
            call_id = call_ids[i]
            sequence = sequences.get(i)
            event_rows.append(
                {
                    "id": event_id,
                    "account_id": account_id,
                    "event": req.event,
                    "pbx_id": req.pbx_id,
                    "call_id": call_id,
                    "sequence": sequence,
                    "idempotency_key": req.idempotency_key,
                    "created_at": stored_at,
                    "body": delivery_body(
                        event_id=event_id,
                        req=req,
                        account_id=account_id,
                        created_at=created_at,
                        call_id=call_id,
                        sequence=sequence,
                    ),
                    "skip_reason": plan.skip_reason,
                }
            )
            made_ids = []
            for endpoint_id in plan.endpoint_ids:
                delivery_id = next(delivery_ids)
                made_ids.append(delivery_id)
                delivery_rows.append(
                    {
                        "id": delivery_id,
                        "event_id": event_id,
                        "account_id": account_id,
                        "endpoint_id": endpoint_id,
                        "event": req.event,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "created_at": stored_at,
                        "window_start": stored_at,
                        "next_attempt_at": stored_at,
                        "call_id": call_id,
                        "sequence": sequence,
                        "claim_key": claim_keys[ordering.group_of(req.event)],
                    }
                )
            made[i] = Published(
                event_id,
                req.event,
                req.pbx_id,
                account_id,
                False,
                made_ids[0] if made_ids else None,
                plan.skip_reason,
                tuple(made_ids),
            )
        _line_up(conn, delivery_rows, stored_at, _orderings(targets))
        event_store.insert(conn, event_rows)
        event_store.insert_deliveries(conn, delivery_rows)
        results = []
        for i, req in enumerate(requests):
            if i in made:
                results.append(made[i])
                continue
            key = (req.account_id or "", req.idempotency_key or "")
            original = existing.get(key) or made[first_of_key[key]].id
            results.append(Published(original, req.event, req.pbx_id, key[0], True, None, None))
        return results


def _orderings(targets: Mapping[str, Sequence[Endpoint]]) -> dict[str, ordering.Ordering]:
    return {e.id: e.ordering for found in targets.values() for e in found}


def _line_up(
    conn: Connection,
    rows: list[dict[str, Any]],
    stored_at: Any,
    orderings: Mapping[str, ordering.Ordering],
) -> None:
    """Place each new delivery of a call in its (endpoint, call) line (issue 14): the first
    of a free line holds it (claimable), the rest wait (``core.ordering.place``); deliveries
    to an endpoint with ``ordering`` ``none`` are claimable at once, as are events with no
    call."""
    per_call = ordering.Ordering.PER_CALL
    lines = {
        (r["endpoint_id"], r["call_id"])
        for r in rows
        if r["call_id"] is not None and orderings.get(r["endpoint_id"], per_call) is per_call
    }
    if lines:
        line_store.lock_lines(conn, lines)
    taken = line_store.taken_lines(conn, lines)
    for row in rows:
        line = (row["endpoint_id"], row["call_id"])
        chosen = orderings.get(row["endpoint_id"], per_call)
        placement = ordering.place(chosen, row["call_id"], line in taken)
        row["status"] = placement.status.value
        row["holds_line"] = placement.holds_line
        row["line_since"] = stored_at if placement.holds_line else None
        if placement is not ordering.PENDING_FREE:
            taken.add(line)


@dataclass(frozen=True, slots=True)
class FanOut:
    """Where one event goes: the endpoints to make a delivery for, or why none."""

    endpoint_ids: tuple[str, ...]
    skip_reason: SkipReason | None


def fan_out(endpoints: Sequence[Endpoint] | None, event: str, *, only: str | None = None) -> FanOut:
    """Pure: the deliveries an ``event`` makes among an account's ``endpoints`` (decided at
    publish time, primary endpoint first).

    Every enabled endpoint with a URL subscribed to the event gets one. A ``test`` event goes
    to every endpoint with a URL even while disabled (it verifies the endpoint), or to ``only``
    when given. With none: ``no_webhook_url`` (no endpoint has a URL), ``integration_disabled``
    (every endpoint with a URL is disabled), else ``not_subscribed``.
    """
    with_url = [e for e in endpoints or () if e.url is not None]
    if only is not None:
        with_url = [e for e in with_url if e.id == only]
    if not with_url:
        return FanOut((), SkipReason.NO_WEBHOOK_URL)
    if event == catalog.TEST_EVENT:
        return FanOut(tuple(e.id for e in with_url), None)
    enabled = [e for e in with_url if e.enabled]
    if not enabled:
        return FanOut((), SkipReason.INTEGRATION_DISABLED)
    chosen = tuple(e.id for e in enabled if e.subscribes(event))
    return FanOut(chosen, None if chosen else SkipReason.NOT_SUBSCRIBED)


def publish_one(
    publisher: Publisher,
    *,
    event: str,
    account_id: str,
    pbx_id: str,
    data: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> Published:
    """The in-process Python call: validate and publish one event."""
    item: dict[str, Any] = {
        "event": event,
        "pbx_id": pbx_id,
        "account_id": account_id,
        "data": dict(data),
    }
    if idempotency_key is not None:
        item["idempotency_key"] = idempotency_key
    return publisher.publish([parse_event(item)])[0]


def send_test_event(
    publisher: Publisher, *, account_id: str, now: datetime, endpoint_id: str | None = None
) -> Published:
    """Queue a ``test`` event (dashboard button, API v2): to ``endpoint_id`` only, or (None) to
    the account's primary endpoint (spec 002's ``POST /api/v2/webhooks/test``).

    The caller checks first that the endpoint has a URL (else there is nothing to send to);
    the event is delivered even while the endpoint is disabled.
    """
    pbx_id = "test_" + now.strftime("%Y%m%d%H%M%S%f")
    data = {
        "message": "Test event from Callhook: your endpoint is receiving webhooks.",
        "timestamp": rfc3339(now),
    }
    if endpoint_id is None:
        endpoint_id = publisher.primary_endpoint_id(account_id)
    request = parse_event(
        {"event": catalog.TEST_EVENT, "pbx_id": pbx_id, "account_id": account_id, "data": data}
    )
    return publisher.publish([replace(request, endpoint_id=endpoint_id or "")])[0]


__all__ = [
    "PublishRequest",
    "Published",
    "Publisher",
    "bind_accounts",
    "parse_event",
    "parse_publish_body",
    "publish_one",
    "send_test_event",
]
