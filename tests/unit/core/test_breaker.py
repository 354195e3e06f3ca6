"""Circuit breakers: closed → open after consecutive tripping failures → one probe → closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callhook.core.breaker import Breakers

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _fail(b: Breakers, n: int, now: datetime = T0, cls: str = "timeout") -> list[bool]:
    return [b.record("acc", error_class=cls, now=now) for _ in range(n)]


def test_opens_after_threshold_consecutive_failures() -> None:
    b = Breakers(threshold=3, cooldown=30)
    assert _fail(b, 3) == [False, False, True]
    assert b.blocked(T0) == {"acc"}
    assert b.probing(T0) == set()


@pytest.mark.parametrize("answer", [None, "http_status", "redirect"])
def test_any_answer_resets_the_count(answer: str | None) -> None:
    b = Breakers(threshold=3)
    _fail(b, 2)
    b.record("acc", error_class=answer, now=T0)
    assert _fail(b, 2) == [False, False]
    assert b.blocked(T0) == set()


@pytest.mark.parametrize("cls", ["timeout", "connect_error", "tls_error"])
def test_tripping_classes(cls: str) -> None:
    b = Breakers(threshold=2)
    assert _fail(b, 2, cls=cls)[-1] is True


def test_half_open_probe_then_close_or_reopen_with_longer_cooldown() -> None:
    b = Breakers(threshold=2, cooldown=30, max_cooldown=100)
    _fail(b, 2)
    later = T0 + timedelta(seconds=30)
    assert b.blocked(later) == set()
    assert b.probing(later) == {"acc"}
    # The probe fails: open again for twice as long.
    assert b.record("acc", error_class="timeout", now=later) is True
    assert b.blocked(later + timedelta(seconds=59)) == {"acc"}
    assert b.probing(later + timedelta(seconds=60)) == {"acc"}
    # Cooldowns stop growing at the maximum.
    assert b.record("acc", error_class="timeout", now=later + timedelta(seconds=60)) is True
    assert b.probing(later + timedelta(seconds=160)) == {"acc"}
    # A successful probe closes it and forgets the cooldown.
    b.record("acc", error_class=None, now=later + timedelta(seconds=160))
    assert b.blocked(later + timedelta(seconds=160)) == set()
    assert b.probing(later + timedelta(seconds=160)) == set()
    assert _fail(b, 2, now=T0)[-1] is True
    assert b.probing(T0 + timedelta(seconds=30)) == {"acc"}


def test_breakers_are_per_key() -> None:
    b = Breakers(threshold=1)
    b.record("a", error_class="timeout", now=T0)
    b.record("b", error_class=None, now=T0)
    assert b.blocked(T0) == {"a"}
