"""POST /internal/v1/events: acceptance, the bad-input table, and nothing stored on rejection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callhook.api.app import create_app
from callhook.platform import Platform
from callhook.store.tables import deliveries, events
from tests.factories import AccountInfo, make_account, make_platform, make_token, sample_event

URL = "/internal/v1/events"


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return make_platform(tmp_path)


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform.settings, platform=platform)) as c:
        yield c


@pytest.fixture
def account(platform: Platform) -> AccountInfo:
    return make_account(platform, url="https://hooks.example.com/callhook")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _counts(platform: Platform) -> tuple[int, int]:
    with platform.db.read() as conn:
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
        n_deliveries = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
    return int(n_events), int(n_deliveries)


def test_publish_one_event_commits_before_202(
    client: TestClient, platform: Platform, account: AccountInfo
) -> None:
    token = make_token(platform, None, ["events.write"])
    response = client.post(URL, json=sample_event(account_id=account.id), headers=_auth(token))
    assert response.status_code == 202
    doc = response.json()
    assert set(doc) == {"status", "request_id", "timestamp", "data"}
    assert doc["status"] == 202
    [result] = doc["data"]["events"]
    assert result["id"].startswith("evt_")
    assert result["delivery_id"].startswith("dlv_")
    assert response.headers["X-Request-Id"] == doc["request_id"]
    assert _counts(platform) == (1, 1)


def test_batch_publishes_all(client: TestClient, platform: Platform, account: AccountInfo) -> None:
    token = make_token(platform, None, ["events.write"])
    batch = {"events": [sample_event(account_id=account.id, seed=i) for i in range(50)]}
    response = client.post(URL, json=batch, headers=_auth(token))
    assert response.status_code == 202
    assert len({e["id"] for e in response.json()["data"]["events"]}) == 50
    assert _counts(platform) == (50, 50)


def test_batch_with_one_invalid_event_stores_nothing(
    client: TestClient, platform: Platform, account: AccountInfo
) -> None:
    token = make_token(platform, None, ["events.write"])
    items = [sample_event(account_id=account.id, seed=i) for i in range(5)]
    items[3]["data"]["caller"] = "not-a-number"
    response = client.post(URL, json={"events": items}, headers=_auth(token))
    assert response.status_code == 422
    assert "events[3].data.caller" in response.json()["errors"][0]
    assert _counts(platform) == (0, 0)


def test_account_token_publishes_for_its_account_only(
    client: TestClient, platform: Platform, account: AccountInfo
) -> None:
    other = make_account(platform, url="https://other.example.com/hook", name="Other")
    token = make_token(platform, account.id, ["events.write"])
    own = sample_event()  # no account_id: the token's account is used
    assert client.post(URL, json=own, headers=_auth(token)).status_code == 202
    foreign = sample_event(account_id=other.id)
    response = client.post(URL, json=foreign, headers=_auth(token))
    assert response.status_code == 403
    assert _counts(platform) == (1, 1)


def test_idempotency_key_makes_a_republish_a_no_op(
    client: TestClient, platform: Platform, account: AccountInfo
) -> None:
    token = make_token(platform, None, ["events.write"])
    item = {**sample_event(account_id=account.id), "idempotency_key": "pbx-42-start"}
    first = client.post(URL, json=item, headers=_auth(token)).json()["data"]["events"][0]
    again = client.post(URL, json=item, headers=_auth(token)).json()["data"]["events"][0]
    assert again["id"] == first["id"]
    assert again["duplicate"] is True
    assert _counts(platform) == (1, 1)


def test_unsubscribed_event_is_recorded_as_not_delivered(
    client: TestClient, platform: Platform
) -> None:
    account = make_account(platform, url="https://hooks.example.com/x", events=["sms"])
    token = make_token(platform, None, ["events.write"])
    response = client.post(URL, json=sample_event(account_id=account.id), headers=_auth(token))
    [result] = response.json()["data"]["events"]
    assert result["delivery_id"] is None
    assert result["skip_reason"] == "not_subscribed"
    assert _counts(platform) == (1, 0)


def _unknown(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "event": "invalid_event"}


def _missing_field(item: dict[str, Any]) -> dict[str, Any]:
    data = dict(item["data"])
    del data["caller"]
    return {**item, "data": data}


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        (
            "unknown event",
            400,
            "Unknown event 'invalid_event'. Use GET /api/v2/webhooks/available for the list of "
            "valid events.",
        ),
        ("malformed JSON", 400, "Request body is not valid JSON."),
        ("too large", 413, "Request body exceeds 256 KiB."),
        ("no token", 401, None),
        ("bad token", 401, "Invalid access token."),
        ("wrong scope", 403, "This token lacks the required scope 'events.write'."),
        ("missing field", 422, "data.caller"),
        ("platform token without account", 422, "account_id"),
        ("unknown account", 422, "unknown account"),
        ("wrong content type", 415, "Content-Type must be application/json."),
        ("empty batch", 400, '"events" must be a non-empty list.'),
        ("batch over 1,000", 400, "A batch holds at most 1000 events, not 1001."),
    ],
)
def test_bad_input_gets_a_clear_error_and_stores_nothing(
    client: TestClient,
    platform: Platform,
    account: AccountInfo,
    case: str,
    status: int,
    message: str | None,
) -> None:
    token = make_token(platform, None, ["events.write"])
    item = sample_event(account_id=account.id)
    headers = _auth(token)
    content: bytes | None = None
    body: Any = item
    if case == "unknown event":
        body = _unknown(item)
    elif case == "malformed JSON":
        content, body = b'{"event": "sms", ', None
    elif case == "too large":
        content, body = b'{"pad": "' + b"x" * (257 * 1024) + b'"}', None
    elif case == "no token":
        headers = {}
    elif case == "bad token":
        headers = _auth("chk_not-a-real-token")
    elif case == "wrong scope":
        headers = _auth(make_token(platform, account.id, ["webhooks.read"]))
    elif case == "missing field":
        body = _missing_field(item)
    elif case == "platform token without account":
        body = {k: v for k, v in item.items() if k != "account_id"}
    elif case == "unknown account":
        body = {**item, "account_id": "acc_nope"}
    elif case == "wrong content type":
        content, body = b"event=sms", None
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    elif case == "empty batch":
        body = {"events": []}
    elif case == "batch over 1,000":
        body = {"events": [{}] * 1001}
    if content is not None:
        headers = {"Content-Type": "application/json", **headers}
        response = client.post(URL, content=content, headers=headers)
    else:
        response = client.post(URL, json=body, headers=headers)
    assert response.status_code == status, response.text
    doc = response.json()
    assert set(doc) == {"status", "errors", "request_id", "timestamp", "path"}
    assert doc["status"] == status
    assert doc["path"] == URL
    assert doc["timestamp"].endswith("Z")
    if message is not None:
        assert message in doc["errors"][0]
    assert _counts(platform) == (0, 0)


def test_health_readiness_and_metrics(
    client: TestClient, platform: Platform, account: AccountInfo
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}
    token = make_token(platform, None, ["events.write"])
    client.post(URL, json=sample_event(account_id=account.id), headers=_auth(token))
    text = client.get("/metrics").text
    assert "callhook_queue_pending 1.0" in text
    assert 'callhook_events_published_total{event="incoming_call_start"} 1.0' in text
    assert "callhook_queue_oldest_due_age_seconds" in text
