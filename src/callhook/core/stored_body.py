"""An event's delivery body, as stored: the ``data`` only, compressed; rebuilt exactly when read.

The body every attempt sends (``publish.delivery_body``) is an envelope of values the event row
holds anyway (``id``, ``event``, ``pbx_id``, ``account_id``, ``created_at`` to the millisecond,
and for call events ``call_id`` and ``sequence``) around the publisher's ``data``. Stored whole
it was the largest part of an event row (about 650 bytes of 930; issue 16). Stored here:

- ``0x02`` then ``data`` compressed with zstd and the frozen dictionary
  (``core.body_dictionary``, version 1): about 160 bytes for a 400-byte ``data``;
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
    squeezed = _compressor().compress(data)
    if len(squeezed) < len(data):
        return bytes((ZSTD_V1,)) + squeezed
    return bytes((RAW_DATA,)) + data


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
    if not stored or stored[0] not in (RAW_DATA, ZSTD_V1):
        return stored
    if stored[0] == ZSTD_V1:
        try:
            data = _decompressor().decompress(stored[1:], max_output_size=_MAX_DATA)
        except zstandard.ZstdError as exc:
            raise ValueError(f"stored body of {id} cannot be decompressed") from exc
    else:
        data = stored[1:]
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
