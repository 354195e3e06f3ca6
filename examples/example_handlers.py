"""Stand-in for your business logic, shared by the example receivers.

Every practice of specs 000 and 004 that is not the web framework's job lives here:
log every delivery, dispatch on the event name with a default branch for events this code does
not know yet, and keep the handlers themselves idempotent-friendly (they run once per
``event:pbx_id`` because the adapter deduplicates before calling them).

Configuration comes from the environment:

* ``CALLHOOK_WEBHOOK_SECRET`` — the integration's secret; several, comma-separated, during a
  rotation (required);
* ``CALLHOOK_DEDUP_DB`` — the SQLite file that remembers processed events
  (default ``webhook-dedup.sqlite3``);
* ``CALLHOOK_EXAMPLE_RECORD`` — optional: append each processed event as a JSON line here (the
  tests read it; your code would write to its database instead).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable

from callhook.receiver import Deduplicator, Event, SQLiteStore

logger = logging.getLogger("webhooks")
_record_lock = threading.Lock()


def secrets_from_env() -> list[str]:
    raw = os.environ.get("CALLHOOK_WEBHOOK_SECRET", "")
    secrets = [s.strip() for s in raw.split(",") if s.strip()]
    if not secrets:
        raise SystemExit("set CALLHOOK_WEBHOOK_SECRET to your integration's signing secret")
    return secrets


def dedup_from_env() -> Deduplicator:
    path = os.environ.get("CALLHOOK_DEDUP_DB", "webhook-dedup.sqlite3")
    return Deduplicator(SQLiteStore(path), ttl=24 * 3600)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def _record(event: Event, outcome: str) -> None:
    path = os.environ.get("CALLHOOK_EXAMPLE_RECORD")
    if not path:
        return
    line = json.dumps({"id": event.id, "event": event.event, "outcome": outcome})
    with _record_lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def on_call_event(event: Event) -> None:
    logger.info("call %s: %s (sequence %s)", event.call_id, event.event, event.sequence)
    _record(event, "call")


def on_voicemail(event: Event) -> None:
    logger.info("voicemail on %s", event.pbx_id)
    _record(event, "voicemail")


def on_test(event: Event) -> None:
    logger.info("test event received: the endpoint works")
    _record(event, "test")


EVENT_HANDLERS: dict[str, Callable[[Event], None]] = {
    "incoming_call_start": on_call_event,
    "incoming_call_answer": on_call_event,
    "incoming_call_end": on_call_event,
    "outgoing_call_start": on_call_event,
    "outgoing_call_answer": on_call_event,
    "outgoing_call_end": on_call_event,
    "voicemail": on_voicemail,
    "test": on_test,
}


def process_event(event: Event) -> None:
    """Runs after the 200 has been sent. Unknown events are logged, never an error."""
    handler = EVENT_HANDLERS.get(event.event)
    if handler is None:
        logger.warning("unhandled event type %r (id %s)", event.event, event.id)
        _record(event, "unhandled")
        return
    handler(event)


async def process_event_async(event: Event) -> None:
    """The same, for asyncio frameworks (real code would await its database here)."""
    process_event(event)
