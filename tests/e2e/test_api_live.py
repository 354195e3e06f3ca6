"""Spec 002 against a live ``callhook serve``: its curl commands and its Bulk Enable Example,
run as written with only the host (and the token placeholder) replaced."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from callhook.events import SUBSCRIBABLE_EVENTS
from tests.factories import make_account, make_platform, make_token
from tests.support.receiver import free_port

pytestmark = pytest.mark.e2e

CALLHOOK = str(Path(sys.executable).parent / "callhook")
SPEC_HOST = "https://app.sipsim.com"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# The curl commands of spec 002, verbatim.
CURL_AVAILABLE = """curl "https://app.sipsim.com/api/v2/webhooks/available" \\
-H "Authorization: Bearer YOUR_ACCESS_TOKEN\""""
CURL_ENABLED = """curl "https://app.sipsim.com/api/v2/webhooks" \\
-H "Authorization: Bearer YOUR_ACCESS_TOKEN\""""
CURL_ENABLE = """curl -X POST "https://app.sipsim.com/api/v2/webhooks/outgoing_call_end" \\
-H "Authorization: Bearer YOUR_ACCESS_TOKEN\""""
CURL_DISABLE = """curl -X DELETE "https://app.sipsim.com/api/v2/webhooks/incoming_call_start" \\
-H "Authorization: Bearer YOUR_ACCESS_TOKEN\""""

# The Bulk Enable Example of spec 002, verbatim.
BULK_ENABLE = textwrap.dedent(
    """\
    import requests

    access_token = "YOUR_ACCESS_TOKEN"
    headers = {"Authorization": f"Bearer {access_token}"}

    available = requests.get(
        "https://app.sipsim.com/api/v2/webhooks/available",
        headers=headers
    ).json()["data"]

    for event in available:
        requests.post(
            f"https://app.sipsim.com/api/v2/webhooks/{event['event']}",
            headers=headers
        )
        print(f"Enabled: {event['event']}")

    print("All events enabled.")
    """
)

# The documented responses, without the per-request request_id and timestamp.
AVAILABLE = {"status": 200, "data": [{"event": e} for e in SUBSCRIBABLE_EVENTS]}
ENABLED = {
    "status": 200,
    "data": [{"event": "incoming_call_start"}, {"event": "incoming_call_end"}],
}
SETTING_AFTER_ENABLE = {
    "status": 200,
    "data": {
        "webhook_url": "https://example.com/webhooks/sipsim",
        "enabled": True,
        "subscribed_events": ["incoming_call_start", "incoming_call_end", "outgoing_call_end"],
    },
}
SETTING_AFTER_DISABLE = {
    "status": 200,
    "data": {
        "webhook_url": "https://example.com/webhooks/sipsim",
        "enabled": True,
        "subscribed_events": ["incoming_call_end", "outgoing_call_end"],
    },
}
NOT_CONFIGURED = {
    "status": 404,
    "errors": ["Webhook integration not configured. Set a webhook URL via the dashboard first."],
    "path": "/api/v2/webhooks",
}
UNKNOWN_EVENT = {
    "status": 400,
    "errors": [
        "Unknown event 'invalid_event'. Use GET /api/v2/webhooks/available for the list of "
        "valid events."
    ],
    "path": "/api/v2/webhooks/invalid_event",
}


@dataclass
class Live:
    base: str
    token: str
    unconfigured_token: str

    def localize(self, text: str, token: str | None = None) -> str:
        return text.replace(SPEC_HOST, self.base).replace("YOUR_ACCESS_TOKEN", token or self.token)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    platform = make_platform(tmp_path)
    account = make_account(
        platform,
        url="https://example.com/webhooks/sipsim",
        events=["incoming_call_start", "incoming_call_end"],
    )
    token = make_token(platform, account.id, ["webhooks.read", "webhooks.write"])
    bare = make_account(platform, name="Not Yet Configured")
    unconfigured_token = make_token(platform, bare.id, ["webhooks.read", "webhooks.write"])
    platform.db.dispose()

    port = free_port()
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [CALLHOOK, "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc)
        yield Live(base, token, unconfigured_token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"callhook serve exited early: {stderr}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("callhook serve did not come up")


def _curl(live: Live, command: str, token: str | None = None) -> dict[str, Any]:
    """Run one of spec 002's curl commands (host replaced) with the real curl."""
    result = subprocess.run(
        ["bash", "-c", live.localize(command, token)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    doc: dict[str, Any] = orjson.loads(result.stdout)
    return doc


def _assert_documented(doc: dict[str, Any], documented: dict[str, Any], *, error: bool) -> None:
    keys = (
        ["status", "errors", "request_id", "timestamp", "path"]
        if error
        else [
            "status",
            "request_id",
            "timestamp",
            "data",
        ]
    )
    assert list(doc) == keys
    assert {k: v for k, v in doc.items() if k not in ("request_id", "timestamp")} == documented
    assert TIMESTAMP.match(doc["timestamp"])
    assert doc["request_id"]


def test_spec_002_curl_commands_as_written(live: Live) -> None:
    seen_ids = []
    steps = [
        (CURL_AVAILABLE, AVAILABLE),
        (CURL_ENABLED, ENABLED),
        (CURL_ENABLE, SETTING_AFTER_ENABLE),
        (CURL_ENABLE, SETTING_AFTER_ENABLE),  # idempotent
        (CURL_DISABLE, SETTING_AFTER_DISABLE),
    ]
    for command, documented in steps:
        doc = _curl(live, command)
        _assert_documented(doc, documented, error=False)
        seen_ids.append(doc["request_id"])
    assert len(set(seen_ids)) == len(seen_ids)


def test_spec_002_errors_as_documented(live: Live) -> None:
    missing = _curl(live, CURL_ENABLED, token=live.unconfigured_token)
    _assert_documented(missing, NOT_CONFIGURED, error=True)
    unknown_command = CURL_ENABLE.replace("outgoing_call_end", "invalid_event")
    _assert_documented(_curl(live, unknown_command), UNKNOWN_EVENT, error=True)
    # And nothing changed.
    _assert_documented(_curl(live, CURL_ENABLED), ENABLED, error=False)


def test_request_id_header_matches_the_envelope(live: Live) -> None:
    response = httpx.get(
        f"{live.base}/api/v2/webhooks", headers={"Authorization": f"Bearer {live.token}"}
    )
    assert response.headers["X-Request-Id"] == response.json()["request_id"]


def test_spec_002_bulk_enable_example_as_written(live: Live, tmp_path: Path) -> None:
    script = tmp_path / "bulk_enable.py"
    script.write_text(live.localize(BULK_ENABLE))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    expected = [f"Enabled: {e}" for e in SUBSCRIBABLE_EVENTS] + ["All events enabled."]
    assert result.stdout.splitlines() == expected
    doc = _curl(live, CURL_ENABLED)
    _assert_documented(
        doc, {"status": 200, "data": [{"event": e} for e in SUBSCRIBABLE_EVENTS]}, error=False
    )


def test_beyond_the_spec_over_the_wire(live: Live) -> None:
    auth = {"Authorization": f"Bearer {live.token}"}
    with httpx.Client(base_url=live.base, headers=auth) as client:
        queued = client.post("/api/v2/webhooks/test")
        assert queued.status_code == 202
        delivery_id = queued.json()["data"]["delivery_id"]
        page = client.get("/api/v2/webhooks/deliveries", params={"limit": 1}).json()["data"]
        detail = client.get(f"/api/v2/webhooks/deliveries/{delivery_id}").json()["data"]
        wrong_method = client.put("/api/v2/webhooks")
        huge = client.post("/api/v2/webhooks/sms", headers={"X-Padding": "a" * 100_000})
    assert [d["id"] for d in page["deliveries"]] == [delivery_id]
    assert detail["request_body"]["event"] == "test"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["path"] == "/api/v2/webhooks"
    assert huge.status_code == 431
    assert huge.json()["errors"] == ["Request header fields too large."]
