"""Parsing publish requests: pure, and every error names what is wrong."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.errors import InvalidRequest, PayloadInvalid, PermissionDenied, UnknownEvent
from callhook.events import ALL_EVENTS, sample_publish_request
from callhook.publish import (
    PublishRequest,
    bind_accounts,
    delivery_body,
    parse_event,
    parse_publish_body,
)

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _sample(event: str = "incoming_call_start") -> dict[str, Any]:
    return sample_publish_request(event, random.Random(1), now=T0, account_id="acc_1")


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_every_sample_parses(event: str) -> None:
    req = parse_event(_sample(event))
    assert req.event == event
    assert req.account_id == "acc_1"


def test_batch_and_single() -> None:
    one = parse_publish_body(orjson.dumps(_sample()), max_events=10)
    many = parse_publish_body(orjson.dumps({"events": [_sample(), _sample("sms")]}), max_events=10)
    assert len(one) == 1
    assert [r.event for r in many] == ["incoming_call_start", "sms"]


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (b"", InvalidRequest, "not valid JSON"),
        (b"[1]", InvalidRequest, "must be a JSON object"),
        (b'{"events": {}}', InvalidRequest, "non-empty list"),
        (b'{"events": [], "x": 1}', InvalidRequest, "no other fields"),
        (b'{"event": "nope", "pbx_id": "1"}', UnknownEvent, "Unknown event 'nope'"),
        (b'{"pbx_id": "1"}', PayloadInvalid, "event: field required"),
        (b'{"event": "sms", "data": {}}', PayloadInvalid, "pbx_id: field required"),
        (b'{"event": "sms", "pbx_id": "", "data": {}}', PayloadInvalid, "pbx_id: value is not"),
        (b'{"event": "sms", "pbx_id": "1", "extra": 1}', PayloadInvalid, "extra: unknown field"),
        (b'{"events": [{"event": "sms", "pbx_id": true}]}', PayloadInvalid, "events[0].pbx_id"),
    ],
)
def test_errors_name_the_problem(body: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        parse_publish_body(body, max_events=10)
    assert text in str(info.value)


def test_data_errors_carry_the_field_path() -> None:
    item = _sample()
    item["data"]["callee"] = "12"
    with pytest.raises(PayloadInvalid) as info:
        parse_publish_body(orjson.dumps({"events": [_sample(), item]}), max_events=10)
    assert info.value.field == "events[1].data.callee"


def test_bind_accounts() -> None:
    req = PublishRequest("sms", "1", None, {})
    assert bind_accounts([req], token_account="acc_9")[0].account_id == "acc_9"
    with pytest.raises(PayloadInvalid, match="account_id"):
        bind_accounts([req], token_account=None)
    foreign = PublishRequest("sms", "1", "acc_other", {})
    with pytest.raises(PermissionDenied):
        bind_accounts([foreign], token_account="acc_9")


def test_delivery_body_field_order_and_call_fields() -> None:
    req = PublishRequest("incoming_call_end", "c1", "acc_1", {"call_id": "c1"})
    body = delivery_body(
        event_id="evt_1",
        req=req,
        account_id="acc_1",
        created_at="2026-01-15T10:30:00.000Z",
        call_id="c1",
        sequence=3,
    )
    assert list(orjson.loads(body)) == [
        "id",
        "event",
        "pbx_id",
        "account_id",
        "created_at",
        "call_id",
        "sequence",
        "data",
    ]
    sms = delivery_body(
        event_id="evt_2",
        req=PublishRequest("sms", "m1", "acc_1", {}),
        account_id="acc_1",
        created_at="x",
        call_id=None,
        sequence=None,
    )
    assert "sequence" not in orjson.loads(sms)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_our_errors(raw: bytes) -> None:
    with contextlib.suppress(InvalidRequest, PayloadInvalid, UnknownEvent):
        parse_publish_body(raw, max_events=5)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=12,
    )
)
def test_arbitrary_json_raises_only_our_errors(doc: object) -> None:
    with contextlib.suppress(InvalidRequest, PayloadInvalid, UnknownEvent):
        parse_publish_body(orjson.dumps(doc), max_events=5)


def test_the_api_models_status_literals_are_the_enums_values() -> None:
    # The OpenAPI document spells statuses as inline enums (Literal), the code as DeliveryStatus.
    from typing import get_args

    from callhook.api.v2 import models
    from callhook.core.outcome import DeliveryStatus

    assert set(get_args(models.DeliveryStatus)) == {s.value for s in DeliveryStatus}
    from callhook.store.deliveries import REDELIVERABLE

    status = models.RedeliverWindow.model_fields["status"].annotation
    assert set(get_args(status)) == set(REDELIVERABLE)  # what the store takes, no more
