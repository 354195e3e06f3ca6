"""The stored form of an attempt's request headers: packed when they are the usual set, JSON
otherwise, and always read back exactly as sent."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import stored_headers
from callhook.delivery.sender import request_headers
from callhook.signing import generate_secret

EVENT_ID = "evt_01KF0K8Y2000000000000000AA"


def _sent(
    secrets: tuple[str, ...], *, attempt: int = 1, timestamp: int = 1_768_473_000
) -> dict[str, str]:
    return request_headers(
        body=b'{"id":"evt_x","data":{}}',
        event_id=EVENT_ID,
        event="incoming_call_start",
        attempt=attempt,
        timestamp=timestamp,
        secrets=secrets,
    )


@pytest.mark.parametrize("secret_count", [1, 2, 3])
@pytest.mark.parametrize("attempt", [1, 7, 130])
def test_the_headers_a_worker_sends_are_packed_and_come_back_in_order(
    secret_count: int, attempt: int
) -> None:
    sent = _sent(tuple(generate_secret() for _ in range(secret_count)), attempt=attempt)
    stored = stored_headers.pack(
        sent, event_id=EVENT_ID, event="incoming_call_start", attempt=attempt
    )
    assert stored[0] == stored_headers.PACKED_V1
    assert len(stored) < len(orjson.dumps(sent)) / 3
    back = stored_headers.unpack(
        stored, event_id=EVENT_ID, event="incoming_call_start", attempt=attempt
    )
    assert back == sent
    assert list(back or {}) == list(sent)


@pytest.mark.parametrize(
    "extra",
    [
        {"X-Webhook-Sequence": "1"},
        {"X-Webhook-Sequence": "12", "X-Webhook-Previous-Sequence": "10"},
        {"X-Webhook-Sequence": "0"},
        {"X-Webhook-Sequence": "999999999"},
        {"X-Webhook-Previous-Sequence": "4"},
    ],
)
def test_a_calls_sequence_headers_are_packed_too(extra: dict[str, str]) -> None:
    sent = {**_sent((generate_secret(),)), **extra}
    stored = stored_headers.pack(sent, event_id=EVENT_ID, event="incoming_call_start", attempt=1)
    assert stored[0] == stored_headers.PACKED_V2
    back = stored_headers.unpack(stored, event_id=EVENT_ID, event="incoming_call_start", attempt=1)
    assert back == sent
    assert list(back or {}) == list(sent)


@pytest.mark.parametrize(
    "extra",
    [
        {"X-Webhook-Sequence": "01"},
        {"X-Webhook-Sequence": "-1"},
        {"X-Webhook-Sequence": "1e3"},
        {"X-Webhook-Sequence": "1234567890"},
        {"X-Webhook-Previous-Sequence": "3", "X-Webhook-Sequence": "4"},
        {"X-Webhook-Sequence": "٣"},
    ],
)
def test_sequence_headers_that_would_not_come_back_are_stored_whole(
    extra: dict[str, str],
) -> None:
    sent = {**_sent((generate_secret(),)), **extra}
    stored = stored_headers.pack(sent, event_id=EVENT_ID, event="incoming_call_start", attempt=1)
    assert stored == orjson.dumps(sent)
    assert (
        stored_headers.unpack(stored, event_id=EVENT_ID, event="incoming_call_start", attempt=1)
        == sent
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.update({"X-Extra": "1"}),
        lambda h: h.pop("User-Agent"),
        lambda h: h.update({"User-Agent": "curl/8"}),
        lambda h: h.update({"Content-Type": "application/json; charset=utf-8"}),
        lambda h: h.update({"X-Webhook-Attempt": "2"}),
        lambda h: h.update({"webhook-timestamp": "1"}),
        lambda h: h.update(
            {"X-Webhook-Timestamp": "01768473000", "webhook-timestamp": "01768473000"}
        ),
        lambda h: h.update({"X-Webhook-Signature": h["X-Webhook-Signature"].upper()}),
        lambda h: h.update({"webhook-signature": h["webhook-signature"] + " v1,AAAA"}),
        lambda h: h.update({"webhook-id": "evt_other"}),
    ],
)
def test_anything_but_the_usual_set_is_stored_whole(change: object) -> None:
    sent = _sent((generate_secret(),))
    change(sent)  # type: ignore[operator]
    stored = stored_headers.pack(sent, event_id=EVENT_ID, event="incoming_call_start", attempt=1)
    assert stored == orjson.dumps(sent)
    assert (
        stored_headers.unpack(stored, event_id=EVENT_ID, event="incoming_call_start", attempt=1)
        == sent
    )


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=10))
def test_any_headers_come_back_as_they_were(headers: dict[str, str]) -> None:
    stored = stored_headers.pack(headers, event_id=EVENT_ID, event="sms", attempt=3)
    assert stored_headers.unpack(stored, event_id=EVENT_ID, event="sms", attempt=3) == headers


def test_rows_written_before_the_packed_form_read_as_they_did() -> None:
    old = orjson.dumps(_sent((generate_secret(),))).decode()
    assert stored_headers.as_json(old, event_id=EVENT_ID, event="x", attempt=9) == old


@pytest.mark.parametrize("stored", [None, b"", "", b"\x01\x00", b"not json", b"[1]"])
def test_nothing_or_unreadable_reads_as_none(stored: bytes | str | None) -> None:
    assert stored_headers.unpack(stored, event_id=EVENT_ID, event="x", attempt=1) is None
