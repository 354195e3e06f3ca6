"""Clocks are passed in, never read from a global: ``Clock`` returns aware UTC datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 15, 10, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self._now = when


def rfc3339(when: datetime) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z``: ``2025-01-15T10:30:00.000Z``.

    The year always has four digits (``strftime("%Y")`` writes ``999`` for 999, which RFC 3339
    does not allow); times read from outside are kept within years 1970–9999
    (:mod:`callhook.core.times`), so nothing wider reaches here.
    """
    u = when.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
        f"{u.microsecond // 1000:03d}Z"
    )


def rfc3339_seconds(when: datetime) -> str:
    """RFC 3339 UTC to the second with a ``Z``, as the envelope of spec 002 shows."""
    u = when.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def monotonic() -> float:
    """Monotonic seconds, for measuring durations (never for timestamps)."""
    return time.monotonic()
