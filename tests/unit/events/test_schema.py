"""json_schema(): one valid JSON Schema document that accepts exactly what the models accept."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import pytest

from callhook.events import ALL_EVENTS, CALL_EVENTS, json_schema, sample_publish_request
from callhook.events.docs import example_delivery_body
from callhook.events.samples import ScheduledEvent

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
DOCUMENT = json_schema()


def _validator(part: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({**part, "$defs": DOCUMENT["$defs"]})


PUBLISH = _validator(DOCUMENT["publish_request"])
DELIVERY = _validator(DOCUMENT["delivery_body"])


def test_document_is_json_and_lists_every_event() -> None:
    assert json.loads(json.dumps(DOCUMENT)) == DOCUMENT
    assert DOCUMENT["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(DOCUMENT["events"]) == list(ALL_EVENTS)
    for name, entry in DOCUMENT["events"].items():
        assert entry["call_related"] == (name in CALL_EVENTS)
        assert entry["data"]["$ref"].removeprefix("#/$defs/") in DOCUMENT["$defs"]
    jsonschema_rs.meta.validate(DOCUMENT)


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_samples_match_the_publish_schema(event: str) -> None:
    request = sample_publish_request(event, random.Random(2), now=NOW, account_id="acc_1")
    assert PUBLISH.is_valid(request)
    assert not PUBLISH.is_valid({**request, "data": {**request["data"], "extra": 1}})
    assert not PUBLISH.is_valid({**request, "event": "unknown"})
    other = "test" if event != "test" else "sms"
    assert not PUBLISH.is_valid({**request, "event": other})


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_delivery_bodies_match_the_delivery_schema(event: str) -> None:
    request = sample_publish_request(event, random.Random(2), now=NOW)
    scheduled = ScheduledEvent(0.0, event, request["pbx_id"], request["data"])
    body = example_delivery_body(scheduled, 4, account_id="acc_1", rng=random.Random(0))
    assert DELIVERY.is_valid(body)
    assert ("sequence" in body) == (event in CALL_EVENTS)
    body.pop("created_at")
    assert not DELIVERY.is_valid(body)


def test_e164_pattern_is_in_the_schema() -> None:
    caller = DOCUMENT["$defs"]["IncomingCallStart"]["properties"]["caller"]
    assert caller["pattern"] == r"^\+[1-9][0-9]{6,14}$"
    timestamp = DOCUMENT["$defs"]["IncomingCallStart"]["properties"]["started_at"]
    assert timestamp["format"] == "date-time"
