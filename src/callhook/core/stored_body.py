"""An event's delivery body, as stored: the ``data`` only, compressed; rebuilt exactly when read.

The body every attempt sends (``publish.delivery_body``) is an envelope of values the event row
holds anyway (``id``, ``event``, ``pbx_id``, ``account_id``, ``created_at`` to the millisecond,
and for call events ``call_id`` and ``sequence``) around the publisher's ``data``. Stored whole
it was the largest part of an event row (about 650 bytes of 930; issue 16). Stored here:

- ``0x03`` then ``data`` compressed with zstd and the frozen dictionary
  (``core.body_dictionary``, version 1), after every JSON string in it equal to the event's
  ``call_id`` became the byte ``0x01`` and every one equal to its ``pbx_id`` the byte ``0x02``:
  a call event's ``data`` repeats them (``call_id``, ``leg_id``, ``transcript_id`` …), ~30
  random characters each that zstd cannot shrink, and the row holds both anyway. Reversible
  because JSON never holds those bytes raw (``pack`` checks). About 115 bytes for the
  simulator's events;
- ``0x02`` then ``data`` compressed the same way without that (rows written before it);
- ``0x01`` then ``data`` as it is, when compressing would not make it smaller;
- anything else (it starts with ``{``) is the body as it was sent: rows written before this
  form, and any body that is not exactly the usual envelope around its ``data``.

``pack`` takes the short forms only when the envelope built from the row's values is,
byte for byte, the start of the body, so ``unpack(pack(body, **row), **row) == body`` for every
body. Pure; no I/O.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Final

import orjson
import zstandard

from callhook.core.body_dictionary import DICTIONARY_V1
from callhook.core.clock import rfc3339

RAW_DATA: Final = 0x01
ZSTD_V1: Final = 0x02
ZSTD_V2: Final = 0x03
#: First bytes of the short forms (a whole body starts with ``{``).
PACKED: Final = frozenset((RAW_DATA, ZSTD_V1, ZSTD_V2))
#: What stands for the event's own ``call_id`` and ``pbx_id`` (JSON strings) in a ``ZSTD_V2``
#: ``data``: control characters, which JSON text never holds unescaped.
_CALL_ID, _PBX_ID = b"\x01", b"\x02"
_LEVEL = 3

_DICT = zstandard.ZstdCompressionDict(DICTIONARY_V1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_DICT.precompute_compress(level=_LEVEL)
# One compressor and decompressor per thread: zstandard releases the GIL while it works and a
# context used by two threads at once mixes their data up (an API thread publishing while the
# worker's database thread unpacked claimed bodies: "Data corruption detected", or another
# body's bytes; tests/unit/core/test_stored_body.py).
_CONTEXTS = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    found: zstandard.ZstdCompressor | None = getattr(_CONTEXTS, "compress", None)
    if found is None:
        found = _CONTEXTS.compress = zstandard.ZstdCompressor(
            dict_data=_DICT, write_checksum=False, write_content_size=True, write_dict_id=False
        )
    return found


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_CONTEXTS, "decompress", None)
    if found is None:
        found = _CONTEXTS.decompress = zstandard.ZstdDecompressor(dict_data=_DICT)
    return found


#: The most a stored ``data`` may expand to (the publish API takes at most 1 MiB per request).
_MAX_DATA = 16 * 2**20


def envelope_head(
    *,
    id: str,
    event: str,
    pbx_id: str,
    account_id: str,
    created_at: datetime,
    call_id: str | None,
    sequence: int | None,
) -> bytes:
    """The body's bytes up to and including ``"data":`` (``publish.delivery_body``'s layout)."""
    dumps = orjson.dumps
    head = (
        b'{"id":'
        + dumps(id)
        + b',"event":'
        + dumps(event)
        + b',"pbx_id":'
        + dumps(pbx_id)
        + b',"account_id":'
        + dumps(account_id)
        + b',"created_at":"'
        + rfc3339(created_at).encode()
        + b'"'
    )
    if call_id is not None:
        head += b',"call_id":' + dumps(call_id) + b',"sequence":' + dumps(sequence)
    return head + b',"data":'


def pack(
    body: bytes,
    *,
    id: str,
    event: str,
    pbx_id: str,
    account_id: str,
    created_at: datetime,
    call_id: str | None,
    sequence: int | None,
) -> bytes:
    """The stored form of ``body`` for the event row with these values (see the module doc)."""
    head = envelope_head(
        id=id,
        event=event,
        pbx_id=pbx_id,
        account_id=account_id,
        created_at=created_at,
        call_id=call_id,
        sequence=sequence,
    )
    if not body.startswith(head) or not body.endswith(b"}") or len(body) <= len(head):
        return body
    data = body[len(head) : -1]
    if _CALL_ID in data or _PBX_ID in data:  # not JSON text: no substitution can be undone
        squeezed, marker = _compressor().compress(data), ZSTD_V1
    else:
        short = _own_ids(call_id, pbx_id, data, forward=True)
        squeezed, marker = _compressor().compress(short), ZSTD_V2
    if len(squeezed) < len(data):
        return bytes((marker,)) + squeezed
    return bytes((RAW_DATA,)) + data


def _own_ids(call_id: str | None, pbx_id: str, data: bytes, *, forward: bool) -> bytes:
    """``data`` with the event's own ids (as JSON strings) and their stand-in bytes swapped:
    ids to bytes ``forward``, back otherwise (in the reverse order)."""
    swaps = [(orjson.dumps(pbx_id), _PBX_ID)]
    if call_id is not None and call_id != pbx_id:
        swaps.insert(0, (orjson.dumps(call_id), _CALL_ID))
    if forward:
        for text, byte in swaps:
            data = data.replace(text, byte)
    else:
        for text, byte in reversed(swaps):
            data = data.replace(byte, text)
    return data


def unpack(
    stored: bytes,
    *,
    id: str,
    event: str,
    pbx_id: str,
    account_id: str,
    created_at: datetime,
    call_id: str | None,
    sequence: int | None,
) -> bytes:
    """The body as sent, from ``pack``'s form and the same row values.

    Raises ``ValueError`` for a stored value no version of ``pack`` makes (a damaged row).
    """
    if not stored or stored[0] not in PACKED:
        return stored
    if stored[0] == RAW_DATA:
        data = stored[1:]
    else:
        try:
            data = _decompressor().decompress(stored[1:], max_output_size=_MAX_DATA)
        except zstandard.ZstdError as exc:
            raise ValueError(f"stored body of {id} cannot be decompressed") from exc
        if stored[0] == ZSTD_V2:
            data = _own_ids(call_id, pbx_id, data, forward=False)
    head = envelope_head(
        id=id,
        event=event,
        pbx_id=pbx_id,
        account_id=account_id,
        created_at=created_at,
        call_id=call_id,
        sequence=sequence,
    )
    return head + data + b"}"
