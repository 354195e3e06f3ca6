"""The stored form of an event's body: the ``data`` only, compressed, rebuilt byte for byte."""

from __future__ import annotations

import hashlib
import random
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import stored_body
from callhook.core.body_dictionary import DICTIONARY_V1, SHA256_V1
from callhook.core.clock import rfc3339
from callhook.events import SUBSCRIBABLE_EVENTS, sample_publish_request
from callhook.publish import PublishRequest, delivery_body

WHEN = datetime(2026, 1, 15, 10, 30, 0, 123_456, tzinfo=UTC)


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "evt_01KF0K8Y2000000000000000AA",
        "event": "incoming_call_start",
        "pbx_id": "call_1",
        "account_id": "acc_01KF0K8Y2000000000000000AA",
        "created_at": WHEN,
        "call_id": "call_1",
        "sequence": 3,
    }
    row.update(changes)
    return row


def _body(row: dict[str, Any], data: Any) -> bytes:
    return delivery_body(
        event_id=row["id"],
        req=PublishRequest(row["event"], row["pbx_id"], row["account_id"], data),
        account_id=row["account_id"],
        created_at=rfc3339(row["created_at"]),
        call_id=row["call_id"],
        sequence=row["sequence"],
    )


def test_the_dictionary_never_changes() -> None:
    assert hashlib.sha256(DICTIONARY_V1).hexdigest() == SHA256_V1


@pytest.mark.parametrize("event", sorted(SUBSCRIBABLE_EVENTS))
@pytest.mark.parametrize("call_id", ["call_1", None])
def test_every_event_of_the_catalog_is_packed_and_comes_back(
    event: str, call_id: str | None
) -> None:
    data = sample_publish_request(event, random.Random(5), now=WHEN)["data"]
    row = _row(event=event, call_id=call_id, sequence=None if call_id is None else 2)
    body = _body(row, data)
    stored = stored_body.pack(body, **row)
    assert stored[0] in (stored_body.ZSTD_V2, stored_body.RAW_DATA)
    assert len(stored) < len(orjson.dumps(data)) + 2
    assert stored_body.unpack(stored, **row) == body


@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ),
    pbx_id=st.text(min_size=1, max_size=40),
    call_id=st.none() | st.text(min_size=1, max_size=40),
)
def test_any_data_and_ids_come_back_byte_for_byte(data: Any, pbx_id: str, call_id: str) -> None:
    row = _row(pbx_id=pbx_id, call_id=call_id, sequence=None if call_id is None else 1)
    body = _body(row, data)
    assert stored_body.unpack(stored_body.pack(body, **row), **row) == body


_ID = st.text(min_size=1, max_size=40)


@given(
    pbx_id=_ID,
    call_id=st.none() | _ID,
    layout=st.lists(st.sampled_from(["pbx", "call", "other", "raw1", "raw2"]), max_size=6),
)
def test_data_repeating_the_events_own_ids_comes_back_byte_for_byte(
    pbx_id: str, call_id: str | None, layout: list[str]
) -> None:
    # The ids as whole strings, inside other strings, as keys; and bodies that are not JSON
    # text, holding the stand-in bytes themselves raw (then nothing is swapped).
    row = _row(pbx_id=pbx_id, call_id=call_id, sequence=None if call_id is None else 1)
    parts = {
        "pbx": orjson.dumps(pbx_id),
        "call": orjson.dumps(call_id or "x"),
        "other": orjson.dumps(f'a{pbx_id}{call_id}"\u0001'),
        "raw1": b'"\x01"',
        "raw2": b'"\x02' + orjson.dumps(pbx_id)[1:],
    }
    data = b"[" + b",".join(parts[p] for p in layout) + b"]"
    body = _body(row, {})[: -len(b"{}}")] + data + b"}"
    stored = stored_body.pack(body, **row)
    assert stored_body.unpack(stored, **row) == body


def test_a_calls_own_ids_are_stored_as_one_byte_each() -> None:
    call_id, leg_id = "call_01KDVDNA00V3RS3DTR98H6BCFN", "leg_01KDVDNB0Q303KBFWS5Q4YKHGP"
    row = _row(event="incoming_call_start_chain_member_call", pbx_id=leg_id, call_id=call_id)
    data = {"call_id": call_id, "leg_id": leg_id, "line": "Sales", "position": 1}
    body = _body(row, data)
    stored = stored_body.pack(body, **row)
    assert stored[0] == stored_body.ZSTD_V2
    plain = orjson.dumps(data)
    assert len(stored) < 1 + len(stored_body._compressor().compress(plain))  # as ZSTD_V1 did
    assert len(stored) <= len(plain) - len(call_id) - len(leg_id)
    assert stored_body.unpack(stored, **row) == body


def test_rows_packed_before_the_ids_were_swapped_still_read() -> None:
    row = _row()
    data = orjson.dumps({"call_id": row["call_id"], "n": 1})
    body = _body(row, {"call_id": row["call_id"], "n": 1})
    older = bytes((stored_body.ZSTD_V1,)) + stored_body._compressor().compress(data)
    assert stored_body.unpack(older, **row) == body


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"evt_other","data":{}}',
        b'{"a":1}',
        b"{}",
        b"",
    ],
)
def test_a_body_that_is_not_the_usual_envelope_is_stored_whole(body: bytes) -> None:
    assert stored_body.pack(body, **_row()) == body
    assert stored_body.unpack(body, **_row()) == body


def test_a_body_whose_row_changed_is_stored_whole() -> None:
    body = _body(_row(), {"x": 1})
    assert stored_body.pack(body, **_row(sequence=4)) == body
    assert stored_body.pack(body, **_row(created_at=WHEN.replace(microsecond=999_000))) == body


def test_a_damaged_packed_body_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot be decompressed"):
        stored_body.unpack(bytes((stored_body.ZSTD_V1,)) + b"garbage", **_row())


def test_threads_packing_and_unpacking_at_once_get_their_own_bodies_back() -> None:
    """zstandard releases the GIL while it works, and one compression context must not be used
    by two threads at once: an API thread publishing while the worker's database thread reads
    claimed bodies got another body's bytes (seen as an undecodable test event at a receiver)."""
    rows = [_row(id=f"evt_01KF0K8Y2000000000000000{n:02d}", pbx_id=f"call_{n}") for n in range(16)]
    bodies = [
        _body(row, {"text": f"word {n} " * (300 + 40 * n), "n": n}) for n, row in enumerate(rows)
    ]
    failures: list[str] = []

    def churn(k: int) -> None:
        for i in range(300):
            n = (k + i) % len(rows)
            try:
                stored = stored_body.pack(bodies[n], **rows[n])
                if stored_body.unpack(stored, **rows[n]) != bodies[n]:
                    failures.append(f"thread {k}, body {n}: another body came back")
            except ValueError as exc:
                failures.append(f"thread {k}, body {n}: {exc}")

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
