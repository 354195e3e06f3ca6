"""Issue 11, classes 3 and 4, over the live ingest (uvicorn, a real socket) on SQLite and
PostgreSQL: times at the edges of the calendar and hostile strings get a 422 naming the field
and store nothing; accepted times are written back as four-digit-year RFC 3339 UTC. Every
publish path (HTTP, ``publish_one``, the simulator; ``emit`` in the CLI tests) gives the same
answer, because they share one validator.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from callhook import simulate
from callhook.core.clock import FakeClock
from callhook.errors import PayloadInvalid
from callhook.events import ALL_EVENTS, sample_publish_request
from callhook.events.models import PBX_ID_FIELD
from callhook.platform import Platform
from callhook.publish import publish_one
from callhook.store import deliveries as delivery_store
from callhook.store.tables import deliveries, events
from tests.factories import BACKENDS, AccountInfo, make_account, make_platform, make_token
from tests.factories import use_backend as using
from tests.support.edge_values import BAD_IDS, EDGE_TIMES, OUT_OF_RANGE_DATA_TIMES, RANGE
from tests.support.live import serving

URL = "/internal/v1/events"
NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


@dataclass
class Live:
    platform: Platform
    http: httpx.Client
    account: AccountInfo


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    backend: str = request.param
    with using(backend):
        platform = make_platform(tmp_path_factory.mktemp(f"ingest-{backend}"), clock=FakeClock())
    account = make_account(platform, url="https://hooks.example.com/callhook")
    token = make_token(platform, None, ["events.write"])
    headers = {"Authorization": f"Bearer {token}"}
    with serving(platform) as base, httpx.Client(base_url=base, headers=headers) as http:
        yield Live(platform, http, account)
    platform.db.dispose()


def _request(live: Live, event: str, seed: int = 0) -> dict[str, Any]:
    return sample_publish_request(event, random.Random(seed), now=NOW, account_id=live.account.id)


def _counts(platform: Platform) -> tuple[int, int]:
    with platform.db.read() as conn:
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
        n_deliveries = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
    return int(n_events), int(n_deliveries)


def _refused(live: Live, body: object) -> str:
    """POST ``body``; it must be a 422 in the envelope that stored nothing. Its message."""
    before = _counts(live.platform)
    response = live.http.post(
        URL, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    doc = response.json()
    assert list(doc) == ["status", "errors", "request_id", "timestamp", "path"]
    assert _counts(live.platform) == before
    [message] = doc["errors"]
    assert isinstance(message, str)
    return message


# --- Class 3: times in event data -----------------------------------------------------------------
def _time_fields() -> list[tuple[str, str]]:
    out = []
    for event in ALL_EVENTS:
        data = sample_publish_request(event, random.Random(0), now=NOW)["data"]
        out += [(event, k) for k, v in data.items() if k.endswith("_at") or k == "timestamp"]
    return out


TIME_FIELDS = _time_fields()


@pytest.mark.parametrize(("event", "field"), TIME_FIELDS, ids=[f"{e}.{f}" for e, f in TIME_FIELDS])
@pytest.mark.parametrize("value", OUT_OF_RANGE_DATA_TIMES)
def test_times_outside_the_range_are_422_naming_the_field(
    live: Live, event: str, field: str, value: str
) -> None:
    item = _request(live, event)
    item["data"][field] = value
    assert _refused(live, item) == f"data.{field}: value {RANGE}"


@pytest.mark.parametrize("value", EDGE_TIMES)
def test_edge_times_are_accepted_and_written_as_four_digit_utc(live: Live, value: str) -> None:
    item = {**_request(live, "test"), "data": {"message": "edge", "timestamp": value}}
    response = live.http.post(URL, json=item)
    assert response.status_code == 202, response.text
    [result] = response.json()["data"]["events"]
    with live.platform.db.read() as conn:
        body = orjson.loads(delivery_store.get(conn, result["delivery_id"]).body or b"")
    expected = (
        "1970-01-01T00:00:00.000Z" if value.startswith("1970") else "9999-12-31T23:59:59.999Z"
    )
    assert body["data"]["timestamp"] == expected
    assert body["created_at"] == "2026-01-15T10:30:00.000Z"


def test_the_issues_example_in_a_batch_names_the_event(live: Live) -> None:
    items = [_request(live, "incoming_call_start", seed) for seed in range(5)]
    items[3]["data"]["started_at"] = "0001-01-01T00:00:00+01:00"
    message = _refused(live, {"events": items})
    assert message == f"events[3].data.started_at: value {RANGE}"


# --- Class 4: the strings that reach storage ----------------------------------------------------
@pytest.mark.parametrize("field", ["pbx_id", "account_id"])
@pytest.mark.parametrize(("value", "reason"), BAD_IDS, ids=[repr(v)[:16] for v, _ in BAD_IDS])
def test_bad_ids_are_422_naming_the_field(
    live: Live, field: str, value: object, reason: str
) -> None:
    item = {**_request(live, "incoming_call_start"), field: value}
    assert _refused(live, item) == f"{field}: {reason}"


@pytest.mark.parametrize("event", sorted(PBX_ID_FIELD))
def test_pbx_id_must_be_the_data_field_the_catalog_names(live: Live, event: str) -> None:
    item = {**_request(live, event), "pbx_id": "someone-else"}
    field = PBX_ID_FIELD[event]
    assert _refused(live, item) == f"pbx_id: must equal data.{field} for {event}"


@pytest.mark.parametrize(
    ("event", "path", "value"),
    [
        ("incoming_call_answer", ("answered_by", "user_name"), "Daniel\x00Kim"),
        ("incoming_call_start", ("line",), "Sales\nSupport"),
        ("incoming_call_start", ("caller_name",), "ACME\x1b[2J"),
        ("voicemail", ("transcription",), "Hello\x00"),
        ("voicemail", ("audio_url",), "https://files.example.com/a\x00.mp3"),
        ("sms", ("text",), "hi\x7f"),
        ("tags", ("tags", 0), "vip\u0085"),
        ("speech", ("segments", 0, "text"), "\x00"),
        ("summary", ("action_items", 0), "call back\x08"),
        ("incoming_call_start", ("call_id",), "call\x00"),
        ("incoming_call_answer", ("answered_by", "user_id"), 4896),
        ("incoming_call_answer", ("answered_by", "extension"), 106),
        ("voicemail", ("mailbox",), "١٠٤"),
    ],
)
def test_hostile_text_in_data_is_422_naming_the_field(
    live: Live, event: str, path: tuple[Any, ...], value: object
) -> None:
    item = _request(live, event, seed=3)
    parent = item["data"]
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    message = _refused(live, item)
    field = "data" + "".join(f".{p}" for p in path)
    assert message.startswith(f"{field}: "), message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("k\x00", "must not contain control characters"),
        (42, "must be a string"),
        ("k" * 201, "must be 1 to 200 characters"),
    ],
)
def test_bad_idempotency_keys_are_422(live: Live, value: object, reason: str) -> None:
    item = {**_request(live, "sms"), "idempotency_key": value}
    assert _refused(live, item) == f"idempotency_key: {reason}"


def test_multi_line_text_with_tabs_and_line_breaks_is_stored_as_sent(live: Live) -> None:
    item = _request(live, "sms", seed=4)
    item["data"]["text"] = "Hi,\r\n\tis my order 58213 shipped yet?"
    response = live.http.post(URL, json=item)
    assert response.status_code == 202, response.text
    [result] = response.json()["data"]["events"]
    with live.platform.db.read() as conn:
        body = orjson.loads(delivery_store.get(conn, result["delivery_id"]).body or b"")
    assert body["data"]["text"] == "Hi,\r\n\tis my order 58213 shipped yet?"


# --- One validator: every publish path answers alike --------------------------------------------
def _mutations() -> list[tuple[str, Any]]:
    def data(event: str, key: str, value: object) -> Any:
        return lambda item: item["data"].__setitem__(key, value) if item["event"] == event else None

    return [
        ("NUL pbx_id", lambda item: item.__setitem__("pbx_id", "call\x00")),
        ("integer pbx_id", lambda item: item.__setitem__("pbx_id", 12345)),
        ("pbx_id not the call", lambda item: item.__setitem__("pbx_id", "another-call")),
        ("year 1 start", data("incoming_call_start", "started_at", "0001-01-01T00:00:00+01:00")),
        ("year 9999 start", data("incoming_call_start", "started_at", "9999-12-31T23:59:59-01:00")),
        ("NUL caller name", data("incoming_call_start", "caller_name", "A\x00")),
    ]


MUTATIONS = _mutations()


@pytest.mark.parametrize(("case", "mutate"), MUTATIONS, ids=[c for c, _ in MUTATIONS])
def test_http_publish_one_and_the_simulator_give_the_same_error(
    live: Live, tmp_path: Path, case: str, mutate: Any
) -> None:
    item = _request(live, "incoming_call_start", seed=9)
    mutate(item)
    over_http = _refused(live, item)
    before = _counts(live.platform)

    with pytest.raises(PayloadInvalid) as in_process:
        publish_one(
            live.platform.publisher,
            event=item["event"],
            account_id=live.account.id,
            pbx_id=item["pbx_id"],
            data=copy.deepcopy(item["data"]),
        )
    assert in_process.value.message == over_http

    sim_event = simulate.SimEvent(0.0, 0, "answered", item["event"], item["pbx_id"], item["data"])
    publish = simulate.in_process(live.platform.publisher, live.account.id)

    async def simulate_one() -> None:
        await publish([sim_event])

    with pytest.raises(PayloadInvalid) as simulated:
        asyncio.run(simulate_one())
    assert simulated.value.message == over_http
    assert _counts(live.platform) == before
