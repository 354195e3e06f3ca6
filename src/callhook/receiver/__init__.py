"""Receive Callhook webhooks correctly: verify, parse, deduplicate, answer fast.

Also its own distribution, ``callhook-receiver`` (``packages/callhook-receiver``: this package and
:mod:`callhook.signing`, nothing else). Standard library only; the framework adapters live
in submodules that import their framework lazily: :mod:`callhook.receiver.fastapi` (FastAPI /
Starlette), :mod:`callhook.receiver.flask`, :mod:`callhook.receiver.django`,
:mod:`callhook.receiver.aiohttp`.

    from callhook.receiver import verify, parse, Deduplicator

    verify(request_headers, raw_body, secret)   # raises WebhookVerificationError → answer 401
    event = parse(raw_body)                      # raises MalformedPayload → answer 400
    if dedup.first_time(event): queue(event)     # then answer 200 at once

A missing, malformed or weak secret (key material under 16 bytes, such as ``"whsec_"`` from an
unset variable) raises :class:`InvalidSecret` — a configuration error, raised by ``verify`` and
when an adapter is constructed, never answered as a 401.
"""

from callhook.errors import InvalidSecret
from callhook.receiver.background import BackgroundRunner
from callhook.receiver.dedup import (
    Deduplicator,
    DedupStore,
    MemoryStore,
    RedisStore,
    SQLiteStore,
)
from callhook.receiver.event import (
    KNOWN_EVENTS,
    Event,
    MalformedPayload,
    ReceiverError,
    parse,
)
from callhook.receiver.explain import Finding, explain
from callhook.receiver.verify import Verification, verify
from callhook.signing import (
    InvalidSignature,
    MalformedHeader,
    MissingHeader,
    StaleTimestamp,
    WebhookVerificationError,
)

__all__ = [
    "KNOWN_EVENTS",
    "BackgroundRunner",
    "DedupStore",
    "Deduplicator",
    "Event",
    "Finding",
    "InvalidSecret",
    "InvalidSignature",
    "MalformedHeader",
    "MalformedPayload",
    "MemoryStore",
    "MissingHeader",
    "ReceiverError",
    "RedisStore",
    "SQLiteStore",
    "StaleTimestamp",
    "Verification",
    "WebhookVerificationError",
    "explain",
    "parse",
    "verify",
]
