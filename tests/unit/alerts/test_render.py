"""Alert mail: subject, body with the dashboard link, headers that data cannot forge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from callhook.alerts import Alert, AlertKind, Channel
from callhook.alerts.render import body, message, subject

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
LINK = "https://callhook.example/dashboard/endpoints/ep_1"


def _alert(kind: AlertKind, **data: Any) -> Alert:
    return Alert(
        id="alt_0123abcd",
        channel=Channel.EMAIL,
        kind=kind,
        account_id="acc_1",
        endpoint_id="ep_1",
        data={"transition_at": "2026-01-15T10:30:00Z", **data},
        created_at=T0,
    )


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            AlertKind.ENDPOINT_FAILING,
            {"url": "https://pbx.example.com/hook"},
            "[Callhook] Endpoint https://pbx.example.com/hook is failing",
        ),
        (
            AlertKind.ENDPOINT_DISABLE_WARNING,
            {"url": "https://pbx.example.com/hook", "disable_at": "2026-01-20T10:30:00Z"},
            "[Callhook] Endpoint https://pbx.example.com/hook will be disabled on "
            "2026-01-20T10:30:00Z unless it recovers",
        ),
        (AlertKind.ENDPOINT_DISABLED, {}, "[Callhook] Endpoint ep_1 was disabled"),
        (AlertKind.ENDPOINT_RECOVERED, {}, "[Callhook] Endpoint ep_1 recovered"),
        (
            AlertKind.DELIVERY_EXHAUSTED,
            {"delivery_id": "dlv_1"},
            "[Callhook] A delivery to ep_1 failed for good",
        ),
    ],
)
def test_subject(kind: AlertKind, data: dict[str, Any], expected: str) -> None:
    assert subject(_alert(kind, **data)) == expected


@pytest.mark.parametrize("kind", list(AlertKind))
def test_every_body_links_to_the_dashboard(kind: AlertKind) -> None:
    text = body(_alert(kind, reason="HTTP 503", delivery_id="dlv_1"), link=LINK)
    assert f"Open in the dashboard: {LINK}" in text
    assert "acc_1" in text
    assert "{{" not in text
    assert "{%" not in text


def test_failing_body_says_when_it_will_be_disabled() -> None:
    text = body(
        _alert(
            AlertKind.ENDPOINT_FAILING,
            url="https://pbx.example.com/hook",
            reason="connect_error",
            failing_since="2026-01-15T10:00:00Z",
            disable_at="2026-01-20T10:00:00Z",
        ),
        link=LINK,
    )
    assert "https://pbx.example.com/hook" in text
    assert "(connect_error)" in text
    assert "Failing since: 2026-01-15T10:00:00Z" in text
    assert "disabled on 2026-01-20T10:00:00Z unless it recovers" in text


def test_message_headers_cannot_be_forged_through_data() -> None:
    alert = _alert(AlertKind.ENDPOINT_FAILING, url="https://x.example/\r\nBcc: victim@example.com")
    msg = message(
        alert,
        sender="Callhook <alerts@callhook.example>",
        recipients=["a@example.com", "b@example.com"],
        link=LINK,
    )
    assert "\n" not in msg["Subject"]
    assert "\r" not in msg["Subject"]
    assert msg["Bcc"] is None
    assert msg["To"] == "a@example.com, b@example.com"
    assert msg["From"] == "Callhook <alerts@callhook.example>"
    # The same alert always has the same Message-ID (a resend is recognisably the same mail).
    assert msg["Message-ID"] == "<alt_0123abcd@callhook.example>"
    assert msg["X-Callhook-Alert"] == "endpoint.failing"
    assert msg.get_content_type() == "text/plain"
