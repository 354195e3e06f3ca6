"""Publishing: turn publish requests into committed events and delivery jobs.

Three parts:

* parsing and validation, pure: ``parse_publish_body``, ``parse_event``, ``bind_accounts``
  (bytes or objects in, validated requests out, or a ``CallhookError``);
* the decision, pure: :func:`fan_out` (an event and the account's endpoints → the endpoints it
  goes to, or why none) and :func:`build_batch` (requests → typed event and delivery rows);
* the write, the store's: ``Publisher.publish`` reads what a batch needs and writes it through
  ``callhook.store`` all-or-nothing in one transaction, returning only after the commit, then
  wakes idle workers. No SQL here (``store/`` is the only package that knows it).

The HTTP ingest route, ``callhook emit``, the simulator and in-process callers all come through
here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from callhook import events as catalog
from callhook.core.clock import Clock, rfc3339
from callhook.core.ids import RandomBits, new_ids
from callhook.core.ordering import Ordering
from callhook.core.outcome import SkipReason
from callhook.errors import ConcurrentPublish, InvalidRequest, PayloadInvalid, PermissionDenied
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store.db import Connection, Database
from callhook.store.endpoints import Endpoint
from callhook.store.events import NewDelivery, NewEvent


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

    @property
    def db(self) -> Database:
        """The database it writes to (``callhook.queueing`` writes redeliveries there)."""
        return self._db

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
            except ConcurrentPublish:
                # A concurrent publish took the same idempotency key between our check and
                # insert; the second pass finds it and returns the original id.
                if attempt == 1:
                    raise
        if any(r.delivery_id for r in results):
            self.notify()
        return results

    def write(self, conn: Connection, requests: Sequence[PublishRequest]) -> list[Published]:
        """``publish`` inside the caller's transaction: no commit, no retry, no wake-up (for
        ``callhook.store.group_commit``, which commits many publishes together)."""
        return self._publish(conn, requests)

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
        """Read what the batch needs (store), decide (pure), write (store): one transaction."""
        now = self._clock.now()
        # Which accounts exist, and where each one's events go (read in this transaction).
        targets = endpoint_store.publish_targets(
            conn, {r.account_id for r in requests if r.account_id}
        )
        check_accounts(requests, targets)
        existing = event_store.find_idempotent(
            conn,
            (
                (r.account_id, r.idempotency_key)
                for r in requests
                if r.idempotency_key and r.account_id
            ),
        )
        fresh, first_of_key = new_requests(requests, existing)
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
        batch = build_batch(
            requests,
            fresh=fresh,
            first_of_key=first_of_key,
            existing=existing,
            targets=targets,
            call_ids=call_ids,
            sequences=sequences,
            now=now,
            rng=self._rng,
        )
        event_store.write_batch(conn, batch.events, batch.deliveries, now=now)
        return batch.results


# --- Deciding (pure) ---------------------------------------------------------------------------
def check_accounts(
    requests: Sequence[PublishRequest], targets: Mapping[str, Sequence[Endpoint]]
) -> None:
    """``PayloadInvalid`` naming the field unless every request's account is in ``targets``
    (the accounts that exist)."""
    for i, req in enumerate(requests):
        if req.account_id not in targets:
            where = f"events[{i}]." if len(requests) > 1 else ""
            raise PayloadInvalid(
                f"{where}account_id: unknown account {req.account_id!r}",
                field=f"{where}account_id",
            )


def new_requests(
    requests: Sequence[PublishRequest], existing: Mapping[tuple[str, str], str]
) -> tuple[list[int], dict[tuple[str, str], int]]:
    """The indexes of the requests that make new events (an idempotency key published before,
    or earlier in this batch, does not), and the index of each key's first request."""
    first_of_key: dict[tuple[str, str], int] = {}
    fresh: list[int] = []
    for i, req in enumerate(requests):
        key = (req.account_id or "", req.idempotency_key) if req.idempotency_key else None
        if key is not None and (key in existing or key in first_of_key):
            continue
        if key is not None:
            first_of_key[key] = i
        fresh.append(i)
    return fresh, first_of_key


@dataclass(frozen=True, slots=True)
class Batch:
    """What one publish writes (typed rows for the store) and answers."""

    events: list[NewEvent]
    deliveries: list[NewDelivery]
    results: list[Published]


def build_batch(
    requests: Sequence[PublishRequest],
    *,
    fresh: Sequence[int],
    first_of_key: Mapping[tuple[str, str], int],
    existing: Mapping[tuple[str, str], str],
    targets: Mapping[str, Sequence[Endpoint]],
    call_ids: Mapping[int, str | None],
    sequences: Mapping[int, int],
    now: datetime,
    rng: RandomBits,
) -> Batch:
    """Pure: the event rows, one delivery row per event and endpoint it fans out to
    (:func:`fan_out`), and a result per request (duplicates answer their original id)."""
    created_at = rfc3339(now)
    plans = {
        i: fan_out(
            targets[requests[i].account_id or ""], requests[i].event, only=requests[i].endpoint_id
        )
        for i in fresh
    }
    event_ids = iter(new_ids("evt", now, len(fresh), rng))
    delivery_ids = iter(new_ids("dlv", now, sum(len(plans[i].endpoint_ids) for i in fresh), rng))
    # Which endpoints deliver each call's events one after another (issue 14).
    ordered = {e.id for found in targets.values() for e in found if e.ordering is Ordering.PER_CALL}
    event_rows: list[NewEvent] = []
    delivery_rows: list[NewDelivery] = []
    made: dict[int, Published] = {}
    for i in fresh:
        req = requests[i]
        account_id = req.account_id or ""
        event_id = next(event_ids)
        plan = plans[i]
        call_id = call_ids[i]
        sequence = sequences.get(i)
        body = delivery_body(
            event_id=event_id,
            req=req,
            account_id=account_id,
            created_at=created_at,
            call_id=call_id,
            sequence=sequence,
        )
        event_rows.append(
            NewEvent(
                event_id,
                account_id,
                req.event,
                req.pbx_id,
                call_id,
                sequence,
                req.idempotency_key,
                body,
                plan.skip_reason,
            )
        )
        made_ids = []
        for endpoint_id in plan.endpoint_ids:
            delivery_id = next(delivery_ids)
            made_ids.append(delivery_id)
            delivery_rows.append(
                NewDelivery(
                    delivery_id,
                    event_id,
                    account_id,
                    endpoint_id,
                    req.event,
                    call_id,
                    sequence,
                    endpoint_id in ordered,
                )
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
    results = []
    for i, req in enumerate(requests):
        if i in made:
            results.append(made[i])
            continue
        key = (req.account_id or "", req.idempotency_key or "")
        original = existing.get(key) or made[first_of_key[key]].id
        results.append(Published(original, req.event, req.pbx_id, key[0], True, None, None))
    return Batch(event_rows, delivery_rows, results)


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
