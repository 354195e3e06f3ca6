"""Identifiers: a prefix and a sortable unique id (ULID layout, Crockford base32).

48 bits of milliseconds then 80 random bits, so ids sort by creation time. Randomness is passed
in (``random.Random`` or anything with ``getrandbits``) so tests can fix it; production uses
``secrets.SystemRandom``.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class RandomBits(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


SYSTEM_RANDOM: RandomBits = secrets.SystemRandom()


# Every pair (10 bits) and triple (15 bits) of characters, so an id takes 9 lookups instead of
# 26 shifts: ~2.3 µs instead of ~3.3 with pairs alone (timeit), paid for every id made and every
# id SQLite gives back as bytes (``store.types.StoredId``). The triples take ~2 MB.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]

#: 26 Crockford base32 characters holding 128 bits (so the first is at most 7).
_BODY = "[0-7][0-9A-HJKMNP-TV-Z]{25}"
_SHAPE = re.compile(rf"([a-z]+)_{_BODY}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_LAST_MS = (datetime(9999, 12, 31, 23, 59, 59, 998000, tzinfo=UTC) - _EPOCH) // _MILLISECOND


def sortable_id(when: datetime, rng: RandomBits = SYSTEM_RANDOM) -> str:
    """26 characters: 10 of time (ms since epoch), 16 of randomness."""
    return _encode((_milliseconds(when) << 80) | rng.getrandbits(80))


def _milliseconds(when: datetime) -> int:
    # Exact: ``int(when.timestamp() * 1000)`` rounds through a float, off by one at some
    # millisecond edges (found by Hypothesis in tests/unit/core/test_ids.py).
    return (when - _EPOCH) // _MILLISECOND


def created_at(value: str) -> datetime:
    """The millisecond an id made by :func:`new_id` was made in (aware UTC), from its first 10
    characters after the prefix. ``ValueError`` for a value without that shape, or whose time is
    past 9999-12-31 23:59:59.998 (no id made has one; callers add a millisecond)."""
    stamp = _stamp(value) if _SHAPE.fullmatch(value) else None
    if stamp is None:
        raise ValueError(f"not an id: {value!r}")
    return _EPOCH + stamp * _MILLISECOND


def _stamp(body: str) -> int | None:
    """The milliseconds in a shaped id's first 10 characters, None past ``_LAST_MS`` (48 bits
    reach the year 10889; datetime stops at 9999)."""
    stamp = 0
    for char in body[body.index("_") + 1 :][:10]:
        stamp = stamp * 32 + _ALPHABET.index(char)
    return stamp if stamp <= _LAST_MS else None


def _encode(value: int) -> str:
    """26 characters for 128 bits: the top 10 bits (2 characters), then 8 times 15 bits."""
    return _PAIRS[(value >> 120) & 1023] + "".join(
        [_TRIPLES[(value >> shift) & 32767] for shift in range(105, -1, -15)]
    )


def new_ids(prefix: str, when: datetime, count: int, rng: RandomBits = SYSTEM_RANDOM) -> list[str]:
    """``count`` ids like ``new_id``'s, drawing the randomness of all of them at once (one
    ``getrandbits`` — one ``getrandom`` system call for ``SystemRandom`` — instead of one each:
    a publish of 100 events needs 200 ids)."""
    if count <= 0:
        return []
    stamp = _milliseconds(when) << 80
    bits = rng.getrandbits(80 * count)
    mask = (1 << 80) - 1
    head = f"{prefix}_"
    out = []
    for _ in range(count):
        value = stamp | (bits & mask)
        bits >>= 80
        out.append(head + _encode(value))
    return out


def new_id(prefix: str, when: datetime, rng: RandomBits = SYSTEM_RANDOM) -> str:
    """``<prefix>_<sortable id>``, e.g. ``evt_01JH8Z...``."""
    return f"{prefix}_{sortable_id(when, rng)}"


def id_pattern(prefix: str) -> str:
    """A regular expression (anchored) for the ids :func:`new_id` makes with ``prefix``."""
    return rf"^{re.escape(prefix)}_{_BODY}$"


def has_id_shape(prefix: str, value: str) -> bool:
    """Whether ``value`` could be an id :func:`new_id` made with ``prefix`` (``dlv_`` + 26
    Crockford base32 characters holding 128 bits, a time before the year 10000; the anchored
    regular expression :func:`id_pattern` checks all but the time). Ids from outside (URL paths,
    query strings) are checked before any query: one that cannot exist is answered "not found"
    without asking the database, which also keeps text it cannot hold (PostgreSQL refuses NUL)
    away from it."""
    match = _SHAPE.fullmatch(value)
    return match is not None and match.group(1) == prefix and _stamp(value) is not None


_TO_INT_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")


def id_to_bytes(prefix: str, value: str) -> bytes | None:
    """The 16 bytes (big-endian, so byte order is the id's sort order) of an id :func:`new_id`
    made with ``prefix``; None for any other string (another prefix, another shape, lower
    case), which has no 16-byte form. ``id_from_bytes(prefix, id_to_bytes(prefix, v)) == v``
    whenever the result is not None (tests/unit/core/test_ids.py)."""
    match = _SHAPE.fullmatch(value)
    if match is None or match.group(1) != prefix:
        return None
    return int(value[len(prefix) + 1 :].translate(_TO_INT_DIGITS), 32).to_bytes(16, "big")


def id_from_bytes(prefix: str, raw: bytes) -> str:
    """The id whose 16 bytes :func:`id_to_bytes` gave. ``ValueError`` unless ``raw`` is 16
    bytes."""
    if len(raw) != 16:
        raise ValueError(f"an id is 16 bytes, not {len(raw)}")
    return f"{prefix}_{_encode(int.from_bytes(raw, 'big'))}"


class Randomness(RandomBits, Protocol):
    """Everything logic draws at random: id bits and jitter. ``random.Random`` satisfies it."""

    def uniform(self, a: float, b: float, /) -> float: ...
