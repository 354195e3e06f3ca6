"""Helpers for the receiver integration tests: free ports, subprocess servers, signed POSTs."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callhook.signing import signature_headers

REPO = Path(__file__).resolve().parents[3]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: A well-formed secret no receiver of these tests holds (a weak one would be refused outright).
WRONG_SECRET = "whsec_RC60C7DbwGMQ8dm+MFuB5otvez6Dz3nXN37F1d8zARU="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts on ``port`` (fails if ``proc`` exits first)."""
    for _ in range(600):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def delivery(
    event: str = "incoming_call_start", *, eid: str = "evt_1", pbx_id: str = "pbx-1", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": eid,
        "event": event,
        "pbx_id": pbx_id,
        "account_id": "acc_local",
        "created_at": "2025-01-15T10:30:00Z",
        "data": {"from": "+14155550123"},
    }
    body.update(extra)
    return body


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def signed_headers(raw: bytes, msg_id: str = "evt_1", secret: str = SECRET) -> dict[str, str]:
    ts = int(datetime.now(UTC).timestamp())
    headers = signature_headers(body=raw, msg_id=msg_id, timestamp=ts, secrets=[secret])
    headers["Content-Type"] = "application/json"
    return headers


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post(port: int, raw: bytes, headers: Mapping[str, str], path: str = "/webhook") -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=raw, headers=dict(headers))
        response = conn.getresponse()
        return Reply(response.status, response.read())
    finally:
        conn.close()


def wait_for_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` once it has at least ``count`` of them."""
    for _ in range(600):
        if path.exists():
            lines = path.read_text("utf-8").splitlines()
            if len(lines) >= count:
                return [json.loads(line) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} lines")
