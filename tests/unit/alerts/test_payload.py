"""The pure part of alerting: dedupe keys, ids, the webhook body, links, the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.alerts import Alert, AlertKind, Channel
from callhook.alerts.payload import (
    MAX_KEY_LENGTH,
    RETRY_DELAYS,
    alert_id,
    dashboard_link,
    dedupe_key,
    next_try_at,
    webhook_body,
)

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
ENDPOINT_KINDS = [k for k in AlertKind if k is not AlertKind.DELIVERY_EXHAUSTED]


def _alert(kind: AlertKind = AlertKind.ENDPOINT_FAILING, **data: Any) -> Alert:
    return Alert(
        id="alt_0123",
        channel=Channel.WEBHOOK,
        kind=kind,
        account_id="acc_1",
        endpoint_id="ep_1",
        data=data,
        created_at=T0,
    )


def test_kinds_are_the_issue_names() -> None:
    assert [str(k) for k in AlertKind] == [
        "endpoint.failing",
        "endpoint.disable_warning",
        "endpoint.disabled",
        "endpoint.recovered",
        "delivery.exhausted",
    ]


@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
def test_endpoint_alerts_are_keyed_by_endpoint_kind_and_transition(kind: AlertKind) -> None:
    first = dedupe_key(kind, "ep_1", {"transition_at": "2026-01-15T10:30:00Z", "reason": "a"})
    # The same transition told twice, with other details: the same alert.
    again = dedupe_key(kind, "ep_1", {"transition_at": "2026-01-15T10:30:00Z", "reason": "b"})
    later = dedupe_key(kind, "ep_1", {"transition_at": "2026-01-16T08:00:00Z"})
    other = dedupe_key(kind, "ep_2", {"transition_at": "2026-01-15T10:30:00Z"})
    assert first == again
    assert len({first, later, other}) == 3


def test_kinds_of_one_transition_are_distinct_alerts() -> None:
    data = {"transition_at": "2026-01-15T10:30:00Z"}
    assert len({dedupe_key(k, "ep_1", data) for k in ENDPOINT_KINDS}) == len(ENDPOINT_KINDS)


def test_exhausted_deliveries_are_keyed_by_delivery() -> None:
    kind = AlertKind.DELIVERY_EXHAUSTED
    assert dedupe_key(kind, "ep_1", {"delivery_id": "dlv_1"}) != dedupe_key(
        kind, "ep_1", {"delivery_id": "dlv_2"}
    )


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (AlertKind.ENDPOINT_FAILING, {}),
        (AlertKind.ENDPOINT_DISABLED, {"transition_at": ""}),
        (AlertKind.ENDPOINT_RECOVERED, {"transition_at": 1700000000}),
        (AlertKind.DELIVERY_EXHAUSTED, {"transition_at": "2026-01-15T10:30:00Z"}),
        (AlertKind.ENDPOINT_FAILING, {"transition_at": "x" * MAX_KEY_LENGTH}),
    ],
)
def test_an_alert_that_cannot_be_told_apart_is_refused(
    kind: AlertKind, data: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="alert"):
        dedupe_key(kind, "ep_1", data)


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_ids_follow_keys(a: str, b: str) -> None:
    assert alert_id(a) == alert_id(a)
    assert alert_id(a).startswith("alt_")
    assert len(alert_id(a)) <= 40
    if a != b:
        assert alert_id(a) != alert_id(b)


def test_webhook_body() -> None:
    alert = _alert(transition_at="2026-01-15T10:30:00Z", url="https://example.com/hook")
    body = orjson.loads(webhook_body(alert, link="https://callhook.example/dashboard/x"))
    assert body == {
        "id": "alt_0123",
        "event": "endpoint.failing",
        "timestamp": "2026-01-15T10:30:00Z",
        "account_id": "acc_1",
        "endpoint_id": "ep_1",
        "dashboard_url": "https://callhook.example/dashboard/x",
        "data": {"transition_at": "2026-01-15T10:30:00Z", "url": "https://example.com/hook"},
    }


@pytest.mark.parametrize(
    ("alert", "link"),
    [
        (_alert(), "https://cb.example/dashboard/endpoints/ep_1"),
        (
            _alert(AlertKind.DELIVERY_EXHAUSTED, delivery_id="dlv_9"),
            "https://cb.example/dashboard/deliveries/dlv_9",
        ),
    ],
)
def test_dashboard_link(alert: Alert, link: str) -> None:
    assert dashboard_link("https://cb.example/", alert) == link
    assert dashboard_link("https://cb.example", alert) == link


def test_retries_back_off_then_stay_at_the_longest_wait() -> None:
    horizon = timedelta(days=30)
    waits = [next_try_at(attempts=n, created_at=T0, now=T0, horizon=horizon) for n in range(1, 12)]
    assert [(w - T0).total_seconds() for w in waits if w is not None] == [
        *RETRY_DELAYS,
        *[RETRY_DELAYS[-1]] * (11 - len(RETRY_DELAYS)),
    ]


def test_retries_stop_at_the_horizon() -> None:
    horizon = timedelta(hours=24)
    last_chance = T0 + horizon - timedelta(seconds=RETRY_DELAYS[-1])
    assert next_try_at(attempts=20, created_at=T0, now=last_chance, horizon=horizon) is not None
    too_late = last_chance + timedelta(seconds=1)
    assert next_try_at(attempts=20, created_at=T0, now=too_late, horizon=horizon) is None
