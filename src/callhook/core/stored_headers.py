"""The request headers of an attempt, as stored: only what varies, rebuilt exactly when read.

Every attempt sends the same nine headers (``delivery.sender.request_headers``): a constant
``Content-Type``, the ``User-Agent``, the event name, the attempt number and the event id (all
three known from the delivery and the attempt row), a timestamp (twice) and one HMAC per signing
secret in each of the two schemes (``callhook.signing``). Stored as JSON they took about 430
bytes per attempt, the largest part of an attempt row (issue 16); packed, about 80:

``0x01``, the timestamp (8 bytes, big-endian signed), the length of the User-Agent's version
and the version (ASCII), then per secret the 32-byte HMAC of our scheme followed by the 32-byte
HMAC of Standard Webhooks.

Events of a call also carry ``X-Webhook-Sequence`` and, when sent out of order behind a failed
predecessor, ``X-Webhook-Previous-Sequence`` (issue 14, appended after the nine): those are
stored as ``0x02``, the two numbers (4 bytes each, big-endian signed, -1 for a header not sent),
then the ``0x01`` form's fields.

``pack`` falls back to the JSON object of every header (which starts with ``{``, as every row
written before the packed form did) whenever the headers are not exactly that usual set, so
``unpack(pack(h)) == h`` for any headers, in order: the packed form is taken only after every
value has been checked to come back byte for byte. Pure; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from typing import Final

import orjson

from callhook.signing import (
    HEADER_SIGNATURE,
    HEADER_SW_ID,
    HEADER_SW_SIGNATURE,
    HEADER_SW_TIMESTAMP,
    HEADER_TIMESTAMP,
)

PACKED_V1: Final = 0x01
PACKED_V2: Final = 0x02
SEQUENCE: Final = "X-Webhook-Sequence"
PREVIOUS: Final = "X-Webhook-Previous-Sequence"
CONTENT_TYPE: Final = "application/json"
PRODUCT: Final = "Callhook/"
#: The usual headers, in sending order.
NAMES: Final = (
    "Content-Type",
    "User-Agent",
    "X-Webhook-Event",
    "X-Webhook-Attempt",
    HEADER_TIMESTAMP,
    HEADER_SIGNATURE,
    HEADER_SW_ID,
    HEADER_SW_TIMESTAMP,
    HEADER_SW_SIGNATURE,
)
_DIGEST = 32
_TIMESTAMP = struct.Struct(">q")
_NUMBERS = struct.Struct(">ii")
_NONE = -1


def pack(headers: Mapping[str, str], *, event_id: str, event: str, attempt: int) -> bytes:
    """The stored form of ``headers`` sent for attempt ``attempt`` of ``event_id`` (see the
    module doc): packed when they are the usual set, else their JSON object (UTF-8)."""
    packed = _packed(headers, event_id=event_id, event=event, attempt=attempt)
    return packed if packed is not None else orjson.dumps(dict(headers))


#: What may follow the usual headers, in sending order.
_EXTRAS: Final = frozenset({(), (SEQUENCE,), (SEQUENCE, PREVIOUS), (PREVIOUS,)})
_COUNT: Final = len(NAMES)


def _packed(headers: Mapping[str, str], *, event_id: str, event: str, attempt: int) -> bytes | None:
    # Every attempt's headers pass here (the worker's hot path): the checks work on the values
    # as a list and use binascii directly (a call's event: 3.5 µs instead of 5.1 with a dict
    # and base64's wrappers, timeit); what they check is unchanged (test_stored_headers.py).
    names = tuple(headers)
    extra = names[_COUNT:]
    if names[:_COUNT] != NAMES or extra not in _EXTRAS:
        return None
    values = list(headers.values())
    base = _packed_v1(values, event_id=event_id, event=event, attempt=attempt)
    if base is None or not extra:
        return base
    numbers = [_number(headers.get(SEQUENCE)), _number(headers.get(PREVIOUS))]
    if numbers[0] is None or numbers[1] is None:
        return None
    sequence = numbers[0] if SEQUENCE in headers else _NONE
    previous = numbers[1] if PREVIOUS in headers else _NONE
    return bytes((PACKED_V2,)) + _NUMBERS.pack(sequence, previous) + base


def _number(text: str | None) -> int | None:
    """A header's non-negative number that comes back as the same text (None otherwise; 0 for
    a header not sent)."""
    if text is None:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 9 or str(int(text)) != text:
        return None
    return int(text)


def _packed_v1(values: list[str], *, event_id: str, event: str, attempt: int) -> bytes | None:
    """The ``0x01`` form of the usual headers' values (in ``NAMES`` order), or None."""
    ctype, agent, name, number, stamp, ours, msg_id, stamp2, standard = values[:_COUNT]
    if (
        ctype != CONTENT_TYPE
        or name != event
        or number != str(attempt)
        or msg_id != event_id
        or stamp != stamp2
        or not agent.startswith(PRODUCT)
    ):
        return None
    version = agent[len(PRODUCT) :]
    if not version.isascii() or len(version) > 255:
        return None
    if not stamp.isascii() or not stamp.lstrip("-").isdigit() or len(stamp) > 18:
        return None
    timestamp = int(stamp)
    if str(timestamp) != stamp:
        return None
    ours_parts = ours.split(",")
    standard_parts = standard.split(" ")
    if len(ours_parts) != len(standard_parts):
        return None
    out = bytearray((PACKED_V1,))
    out += _TIMESTAMP.pack(timestamp)
    out.append(len(version))
    out += version.encode("ascii")
    for mine, theirs in zip(ours_parts, standard_parts, strict=True):
        if not mine.startswith("sha256=") or not theirs.startswith("v1,"):
            return None
        hexed = mine[7:]
        try:
            encoded = theirs[3:].encode("ascii")
            digest = bytes.fromhex(hexed)
            digest2 = binascii.a2b_base64(encoded, strict_mode=True)
        except (ValueError, binascii.Error):  # UnicodeEncodeError is a ValueError
            return None
        # Only the canonical spelling comes back byte for byte (lower-case hex, padded base64).
        if (
            len(digest) != _DIGEST
            or len(digest2) != _DIGEST
            or digest.hex() != hexed
            or binascii.b2a_base64(digest2, newline=False) != encoded
        ):
            return None
        out += digest
        out += digest2
    return bytes(out)


def unpack(
    stored: bytes | str | None, *, event_id: str, event: str, attempt: int
) -> dict[str, str] | None:
    """The headers ``pack`` stored (or the JSON text older rows hold), in sending order; None
    when nothing was stored or it cannot be read."""
    if stored is None:
        return None
    if isinstance(stored, str):
        stored = stored.encode()
    if not stored:
        return None
    if stored[0] == PACKED_V2 and len(stored) > 1 + _NUMBERS.size:
        sequence, previous = _NUMBERS.unpack_from(stored, 1)
        usual = unpack(stored[1 + _NUMBERS.size :], event_id=event_id, event=event, attempt=attempt)
        if usual is None or stored[1 + _NUMBERS.size] != PACKED_V1:
            return None
        if sequence != _NONE:
            usual[SEQUENCE] = str(sequence)
        if previous != _NONE:
            usual[PREVIOUS] = str(previous)
        return usual
    if stored[0] != PACKED_V1:
        try:
            parsed = orjson.loads(stored)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict):
            return None
        return {str(k): str(v) for k, v in parsed.items()}
    if len(stored) < 10:
        return None
    (timestamp,) = _TIMESTAMP.unpack_from(stored, 1)
    end = 10 + stored[9]
    version = stored[10:end].decode("ascii", "replace")
    digests = stored[end:]
    if not digests or len(digests) % (2 * _DIGEST):
        return None
    pairs = [digests[i : i + 2 * _DIGEST] for i in range(0, len(digests), 2 * _DIGEST)]
    stamp = str(timestamp)
    return dict(
        zip(
            NAMES,
            (
                CONTENT_TYPE,
                PRODUCT + version,
                event,
                str(attempt),
                stamp,
                ",".join("sha256=" + p[:_DIGEST].hex() for p in pairs),
                event_id,
                stamp,
                " ".join("v1," + base64.b64encode(p[_DIGEST:]).decode("ascii") for p in pairs),
            ),
            strict=True,
        )
    )


def as_json(stored: bytes | str | None, *, event_id: str, event: str, attempt: int) -> str | None:
    """``unpack``'s headers as the JSON object text the API and the dashboard read."""
    headers = unpack(stored, event_id=event_id, event=event, attempt=attempt)
    return None if headers is None else orjson.dumps(headers).decode()
