"""Identifiers: a prefix and a sortable unique id (ULID layout, Crockford base32).

48 bits of milliseconds then 80 random bits, so ids sort by creation time. Randomness is passed
in (``random.Random`` or anything with ``getrandbits``) so tests can fix it; production uses
``secrets.SystemRandom``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Protocol

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class RandomBits(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


SYSTEM_RANDOM: RandomBits = secrets.SystemRandom()


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def sortable_id(when: datetime, rng: RandomBits = SYSTEM_RANDOM) -> str:
    """26 characters: 10 of time (ms since epoch), 16 of randomness."""
    millis = int(when.timestamp() * 1000)
    return _encode(millis, 10) + _encode(rng.getrandbits(80), 16)


def new_id(prefix: str, when: datetime, rng: RandomBits = SYSTEM_RANDOM) -> str:
    """``<prefix>_<sortable id>``, e.g. ``evt_01JH8Z...``."""
    return f"{prefix}_{sortable_id(when, rng)}"


class Randomness(RandomBits, Protocol):
    """Everything logic draws at random: id bits and jitter. ``random.Random`` satisfies it."""

    def uniform(self, a: float, b: float, /) -> float: ...
