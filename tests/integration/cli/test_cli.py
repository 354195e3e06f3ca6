"""The operator's command line against a real SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from callhook.cli.main import app
from tests.support.receiver import free_port

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def run_json(env: dict[str, str], *args: str) -> Any:
    return orjson.loads(run(env, *args, "--json"))


def test_operator_path_from_account_to_redelivery(env: dict[str, str]) -> None:
    run(env, "migrate")
    account = run_json(env, "accounts", "create", "Acme Telecom")
    acc = account["id"]
    assert acc.startswith("acc_")
    token = run_json(env, "tokens", "create", "--scopes", "events.write", "--account", acc)
    assert token["token"].startswith("chk_")
    listed = run_json(env, "tokens", "list", "--account", acc)
    assert listed[0]["prefix"] == token["token"][:12]
    assert "token_hash" not in listed[0]
    assert "token" not in listed[0]

    # Nothing listens on this port: deliveries will fail with a connect error.
    setting = run_json(env, "integration", "set-url", acc, f"https://localhost:{free_port()}/hook")
    assert setting["url"].startswith("https://localhost:")
    setting = run_json(env, "integration", "subscribe", acc, "incoming_call_start", "sms")
    assert setting["subscribed_events"] == ["incoming_call_start", "sms"]
    setting = run_json(env, "integration", "retry-policy", acc, "none")
    assert setting["retry_policy"] == "none"

    published = run_json(env, "emit", "incoming_call_start", "--account", acc)
    assert published["delivery_id"].startswith("dlv_")
    skipped = run_json(env, "emit", "voicemail", "--account", acc)
    assert skipped["skip_reason"] == "not_subscribed"

    pending = run_json(env, "deliveries", "list", "--status", "pending")
    assert [d["id"] for d in pending] == [published["delivery_id"]]
    assert run_json(env, "deliveries", "list", "--status", "retrying") == []  # not attempted yet
    text = run(env, "deliveries", "list", "--account", acc)
    assert published["delivery_id"] in text

    shown = run_json(env, "deliveries", "show", published["delivery_id"])
    assert shown["body"]["id"] == published["id"]
    assert shown["attempt_log"] == []

    redelivered = run_json(env, "deliveries", "redeliver", "--since", "2000-01-01T00:00:00Z")
    assert redelivered == {"queued": 0}  # nothing has failed yet


def test_bad_input_is_a_clear_message_not_a_traceback(env: dict[str, str]) -> None:
    run(env, "migrate")
    acc = run_json(env, "accounts", "create", "Acme")["id"]
    out = run(env, "integration", "subscribe", acc, "bogus_event", code=1)
    assert "Unknown event 'bogus_event'" in out
    out = run(env, "tokens", "create", "--scopes", "admin", code=1)
    assert "unknown scope(s) admin" in out
    out = run(env, "deliveries", "show", "dlv_missing", code=1)
    assert "not found" in out
    out = run(env, "deliveries", "list", "--status", "lost", code=2)
    assert "status must be one of pending, retrying, waiting, delivered, failed, expired" in out
    out = run(env, "integration", "set-url", acc, "ftp://example.com/x", code=1)
    assert "error" in out.lower()
    out = run(env, "emit", "sms", "--account", acc, "--data", "{not json", code=2)
    assert "not valid JSON" in out
    assert "Traceback" not in out


def test_secret_rotation_keeps_the_old_secret_for_a_while(env: dict[str, str]) -> None:
    run(env, "migrate")
    acc = run_json(env, "accounts", "create", "Acme")["id"]
    [first] = run_json(env, "integration", "secret", acc)
    assert first["secret"].startswith("whsec_")
    both = run_json(env, "integration", "secret", acc, "--rotate")
    assert len(both) == 2
    assert both[1]["secret"] == first["secret"]
    assert both[1]["expires_at"] is not None


def test_secrets_are_encrypted_at_rest(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "migrate")
    acc = run_json(env, "accounts", "create", "Acme")["id"]
    [secret] = run_json(env, "integration", "secret", acc)
    raw = (tmp_path / "cli.db").read_bytes()
    wal = tmp_path / "cli.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert secret["secret"].encode() not in raw
    assert secret["secret"].split("_", 1)[1].encode() not in raw


def test_keys_generate() -> None:
    key = runner.invoke(app, ["keys", "generate"]).output.strip()
    assert len(key) == 43


def test_serve_answers_and_exits_cleanly_on_sigterm(env: dict[str, str]) -> None:
    port = free_port()
    callhook = str(Path(sys.executable).parent / "callhook")
    proc = subprocess.Popen(
        [callhook, "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert response.json() == {"status": "ok", "database": "ok"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "HTTPS"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://localhost/hook", "error"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
    ],
)
def test_unsafe_urls_are_refused_when_configured(tmp_path: Path, url: str, message: str) -> None:
    env = {"CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'safe.db'}"}
    run(env, "migrate")
    acc = run_json(env, "accounts", "create", "Acme")["id"]
    out = run(env, "integration", "set-url", acc, url, code=1)
    assert message.lower() in out.lower()
    shown = run_json(env, "integration", "show", acc)
    assert shown["url"] is None  # nothing stored
