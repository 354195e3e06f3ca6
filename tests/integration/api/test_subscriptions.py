"""The four endpoints of spec 002, in-process: shapes, messages, idempotency, the 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhook.events import SUBSCRIBABLE_EVENTS
from tests.integration.api.helpers import URL_A, assert_error, assert_success, running_api

NOT_CONFIGURED = "Webhook integration not configured. Set a webhook URL via the dashboard first."
UNKNOWN = (
    "Unknown event 'invalid_event'. Use GET /api/v2/webhooks/available "
    "for the list of valid events."
)


def test_available_lists_the_14_events_in_spec_order_without_test(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        data = assert_success(api.get("/api/v2/webhooks/available"))
    assert data == [{"event": e} for e in SUBSCRIBABLE_EVENTS]
    assert len(data) == 14
    assert {"event": "test"} not in data


def test_enabled_lists_only_subscribed_events(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        data = assert_success(api.get("/api/v2/webhooks"))
    assert data == [{"event": "incoming_call_start"}, {"event": "incoming_call_end"}]


def test_enable_returns_webhook_setting_and_is_idempotent(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        first = assert_success(api.post("/api/v2/webhooks/outgoing_call_end"))
        second = assert_success(api.post("/api/v2/webhooks/outgoing_call_end"))
        stored = api.subscribed()
    expected = {
        "webhook_url": URL_A,
        "enabled": True,
        "subscribed_events": ["incoming_call_start", "incoming_call_end", "outgoing_call_end"],
    }
    assert first == expected
    assert second == expected
    assert list(first) == ["webhook_url", "enabled", "subscribed_events"]
    assert stored == ("incoming_call_start", "incoming_call_end", "outgoing_call_end")


def test_disable_returns_webhook_setting_and_is_idempotent(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        first = assert_success(api.delete("/api/v2/webhooks/incoming_call_start"))
        second = assert_success(api.delete("/api/v2/webhooks/incoming_call_start"))
        assert api.subscribed() == ("incoming_call_end",)
    assert (
        first
        == second
        == {
            "webhook_url": URL_A,
            "enabled": True,
            "subscribed_events": ["incoming_call_end"],
        }
    )


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_unknown_event_is_spec_400_word_for_word_and_changes_nothing(
    tmp_path: Path, method: str
) -> None:
    with running_api(tmp_path) as api:
        before = api.subscribed()
        response = api.client.request(method, "/api/v2/webhooks/invalid_event", headers=api.auth())
        doc = assert_error(response, 400, "/api/v2/webhooks/invalid_event")
        assert api.subscribed() == before
    assert doc["errors"] == [UNKNOWN]


def test_test_is_not_subscribable(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        response = api.delete("/api/v2/webhooks/test")
        assert_error(response, 405, "/api/v2/webhooks/test")
        assert response.headers["Allow"] == "POST"
        assert "test" not in api.subscribed()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/webhooks/available"),
        ("GET", "/api/v2/webhooks"),
        ("POST", "/api/v2/webhooks/outgoing_call_end"),
        ("DELETE", "/api/v2/webhooks/incoming_call_start"),
        ("GET", "/api/v2/webhooks/deliveries"),
        ("GET", "/api/v2/webhooks/deliveries/dlv_01KF0K8Y20PDDGMEPHX7DTC6DB"),
        ("POST", "/api/v2/webhooks/deliveries/dlv_01KF0K8Y20PDDGMEPHX7DTC6DB/redeliver"),
        ("POST", "/api/v2/webhooks/test"),
        ("GET", "/api/v2/webhooks/events/call-1"),
    ],
)
def test_every_endpoint_answers_the_documented_404_until_the_url_is_set(
    tmp_path: Path, method: str, path: str
) -> None:
    with running_api(tmp_path, url=None) as api:
        response = api.client.request(method, path, headers=api.auth())
        doc = assert_error(response, 404, path)
        assert api.subscribed() == ()
    assert doc["errors"] == [NOT_CONFIGURED]


def test_window_redelivery_answers_the_404_until_the_url_is_set(tmp_path: Path) -> None:
    with running_api(tmp_path, url=None) as api:
        response = api.post(
            "/api/v2/webhooks/deliveries/redeliver", json={"since": "2026-01-01T00:00:00Z"}
        )
    assert assert_error(response, 404)["errors"] == [NOT_CONFIGURED]


def test_request_ids_are_unique_and_sent_as_header(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        responses = [api.get("/api/v2/webhooks") for _ in range(20)]
        responses.append(api.get("/api/v2/webhooks/nope"))
    ids = [r.json()["request_id"] for r in responses]
    assert len(set(ids)) == len(ids)
    assert ids == [r.headers["X-Request-Id"] for r in responses]


def test_timestamp_comes_from_the_clock_in_utc_with_z(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        api.clock.advance(3600.9)
        doc = api.get("/api/v2/webhooks").json()
    assert doc["timestamp"] == "2026-01-15T11:30:00Z"
