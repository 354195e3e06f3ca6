"""Ordered delivery per call, priority for call-control events, expiry: the rules, pure.

Issue 14. The store applies these rules in SQL (``store/ordering.py``); this module decides
and is what the tests and the bench's ordering checker reason with.

**The line.** For an endpoint whose ``ordering`` is ``per_call``, the events of one call form a
*line* keyed by (endpoint, call): at most one of its deliveries *holds the line* (it is claimable,
``pending``, or being attempted); the later ones are ``waiting`` (not claimable). When the holder
finishes — delivered, failed for good, expired — the waiting delivery with the lowest sequence
takes the line (same transaction). Events with no call, and endpoints with ``ordering`` ``none``,
have no line: they are ``pending`` at once, as before.

**Head-of-line bound.** A holder that has held its line for ``bound`` (default 5 minutes, per
endpoint) while later events wait is *bypassed*: it keeps retrying on its own, and the next
waiting delivery takes the line, marked as sent out of order behind that holder's sequence
(``X-Webhook-Previous-Sequence``). Its successors stay in order behind it.

**Priority.** The claim takes due deliveries by ``claim_key``: the due time for call-control
events, the due time plus ``aging`` for bulk ones. A call-control event is therefore ahead of
every bulk event that fell due less than ``aging`` before it, and a bulk event is never behind a
call-control event that fell due more than ``aging`` after it — bulk work is delayed by at most
``aging`` relative to first-in-first-out, never starved.

**Expiry.** Per endpoint and event group an optional maximum age: a delivery whose window
started (publish, or a redelivery) longer ago is not sent; it becomes ``expired`` and, like any
finished delivery, hands its line on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from callhook.core.outcome import DeliveryStatus
from callhook.errors import PayloadInvalid
from callhook.events.names import INCOMING_CALL_EVENTS, OUTGOING_CALL_EVENTS, TEST_EVENT


class Ordering(StrEnum):
    """An endpoint's ordering: ``per_call`` (the default) or ``none`` (as before issue 14)."""

    PER_CALL = "per_call"
    NONE = "none"


class EventGroup(StrEnum):
    """Live call-control events (claimed first; often worthless late) or bulk ones."""

    CALL_CONTROL = "call_control"
    BULK = "bulk"


#: Call start, dial-chain members, answer and end, both directions; and the test event, which a
#: person is watching for. Everything else (speech, summary, tags, rating, voicemail, sms) is bulk.
CALL_CONTROL_EVENTS: Final[frozenset[str]] = frozenset(
    (*INCOMING_CALL_EVENTS, *OUTGOING_CALL_EVENTS, TEST_EVENT)
)

DEFAULT_BOUND: Final = timedelta(minutes=5)
#: How far bulk events are handicapped in the claim's order (``claim_key``): a call-control
#: event is ahead of any bulk backlog up to this deep, and bulk waits at most this much longer
#: than first-in-first-out (only while call-control alone fills the endpoint). 30 s (the first
#: choice) let a backlog deeper than half a minute — an endpoint back from an outage, a rate
#: limit — come before every live call event: 8.7 s p50 in the priority bench with 60,000 sms
#: queued (docs/decisions.md, "Ordered delivery per call").
DEFAULT_AGING: Final = timedelta(minutes=10)
#: Bounds and maximum ages are whole seconds in [1, MAX_SECONDS]: longer than the 24 h retry
#: window means nothing, and 0 would make every event out of order (bound) or expired (age).
MAX_SECONDS: Final = 24 * 3600

#: Request header on every attempt of a call's event: its sequence within the call.
SEQUENCE_HEADER: Final = "X-Webhook-Sequence"
#: Request header on an event released past the head-of-line bound: the sequence of the call's
#: event it was sent ahead of (not finished at the time).
PREVIOUS_HEADER: Final = "X-Webhook-Previous-Sequence"


def group_of(event: str) -> EventGroup:
    """The priority and expiry group of an event name (any name; unknown names are bulk)."""
    return EventGroup.CALL_CONTROL if event in CALL_CONTROL_EVENTS else EventGroup.BULK


def is_call_control(event: str) -> bool:
    """Whether ``event`` is a live call-control event (claimed and started first, issue 14)."""
    return group_of(event) is EventGroup.CALL_CONTROL


def claim_key(group: EventGroup, due: datetime, aging: timedelta = DEFAULT_AGING) -> datetime:
    """The claim's sort key (``deliveries.claim_key``): earliest first among due deliveries.

    Call-control: ``due``; bulk: ``due + aging`` (aging >= 0). See the module docstring for
    what this guarantees.
    """
    return due if group is EventGroup.CALL_CONTROL else due + aging


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new delivery starts: its status and whether it holds its call's line."""

    status: DeliveryStatus  # PENDING or WAITING
    holds_line: bool


PENDING_FREE: Final = Placement(DeliveryStatus.PENDING, False)
PENDING_HOLDER: Final = Placement(DeliveryStatus.PENDING, True)
WAITING: Final = Placement(DeliveryStatus.WAITING, False)


def place(ordering: Ordering, call_id: str | None, line_taken: bool) -> Placement:
    """Status of a new delivery: ``line_taken`` when its (endpoint, call) already has an
    unfinished holder or waiting delivery (in the database or earlier in the same batch)."""
    if ordering is Ordering.NONE or call_id is None:
        return PENDING_FREE
    return WAITING if line_taken else PENDING_HOLDER


def bound_passed(line_since: datetime, now: datetime, bound: timedelta) -> bool:
    """Whether a holder that took its line at ``line_since`` is bypassed at ``now``."""
    return now - line_since >= bound


@dataclass(frozen=True, slots=True)
class Expiry:
    """Optional maximum age per event group (None: never expires, the default)."""

    call_control: timedelta | None = None
    bulk: timedelta | None = None

    def max_age(self, group: EventGroup) -> timedelta | None:
        return self.call_control if group is EventGroup.CALL_CONTROL else self.bulk


def max_age_of(
    event: str, call_control_seconds: int | None, bulk_seconds: int | None
) -> timedelta | None:
    """An endpoint's maximum age for ``event`` from its two columns (None: never expires)."""
    seconds = call_control_seconds if group_of(event) is EventGroup.CALL_CONTROL else bulk_seconds
    return None if seconds is None else timedelta(seconds=seconds)


def is_expired(window_start: datetime, now: datetime, max_age: timedelta | None) -> bool:
    """Whether a delivery whose window started at ``window_start`` is too old to send."""
    return max_age is not None and now - window_start > max_age


@dataclass(frozen=True, slots=True)
class OrderingPolicy:
    """An endpoint's ordering settings (the endpoint fields of issue 14)."""

    ordering: Ordering = Ordering.PER_CALL
    bound: timedelta = DEFAULT_BOUND
    expiry: Expiry = field(default_factory=Expiry)


# --- Validation of the endpoint fields (API, CLI, dashboard) ----------------------------------
def parse_ordering(value: object, *, field_name: str = "ordering") -> Ordering:
    """``per_call`` or ``none``; anything else raises ``PayloadInvalid`` naming the field."""
    if isinstance(value, str):
        try:
            return Ordering(value)
        except ValueError:
            pass
    allowed = ", ".join(o.value for o in Ordering)
    raise PayloadInvalid(f"{field_name}: must be one of {allowed}", field=field_name)


def parse_seconds(value: object, *, field_name: str, optional: bool) -> int | None:
    """A whole number of seconds in [1, MAX_SECONDS] (or None when ``optional``).

    Raises ``PayloadInvalid`` naming ``field_name`` for anything else (booleans, fractions,
    strings, negatives, zero, more than a day).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a whole number of seconds" + (" or null" if optional else "")
        raise PayloadInvalid(f"{field_name}: must be {kind}", field=field_name)
    if not 1 <= value <= MAX_SECONDS:
        raise PayloadInvalid(
            f"{field_name}: must be between 1 and {MAX_SECONDS} seconds", field=field_name
        )
    return value


# --- The receiver's view: what "in order" means, checked --------------------------------------
@dataclass(frozen=True, slots=True)
class Receipt:
    """One request a receiver got for a call's event (duplicates included)."""

    call: str
    sequence: int
    previous: int | None  # X-Webhook-Previous-Sequence, when sent out of order


@dataclass(slots=True)
class OrderAudit:
    """Counts ordering violations as a receiver sees them (the bench's sink, the tests).

    The guarantee checked: when sequence ``s`` of a call arrives, every earlier sequence ``r``
    of that call that was published to this endpoint has *finished* (``finish`` was called for
    it: delivered, failed for good or expired) — unless the gap was announced: some arrival of
    the call at or before this one, with a sequence in ``(r, s]``, carried ``previous >= r``.
    Duplicates of earlier events are fine. ``expected`` maps a call to the sequences it has for
    this endpoint (other sequences, for events the endpoint did not subscribe to, never block);
    None: every lower sequence (an endpoint subscribed to every event).
    """

    expected: Mapping[str, frozenset[int]] | None = None
    finished: dict[str, set[int]] = field(default_factory=dict)
    announced: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    arrivals: int = 0
    violations: list[tuple[str, int, int]] = field(default_factory=list)
    gaps_announced: int = 0

    def arrive(self, receipt: Receipt) -> None:
        """A request arrived (before the receiver answers it)."""
        self.arrivals += 1
        call, seq = receipt.call, receipt.sequence
        if receipt.previous is not None:
            self.gaps_announced += 1
            self.announced.setdefault(call, []).append((seq, receipt.previous))
        done = self.finished.get(call, set())
        marks = self.announced.get(call, ())
        if self.expected is None:
            earliers: Iterable[int] = range(1, seq)
        else:
            earliers = sorted(self.expected.get(call, frozenset()))
        for earlier in earliers:
            if earlier >= seq:
                break
            if earlier in done:
                continue
            if any(earlier < q <= seq and p >= earlier for q, p in marks):
                continue
            self.violations.append((call, earlier, seq))

    def finish(self, call: str, sequence: int) -> None:
        """The delivery of ``sequence`` finished (the receiver answered 2xx for the last time,
        or it failed for good, or it expired)."""
        self.finished.setdefault(call, set()).add(sequence)
