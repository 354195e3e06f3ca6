"""`make run`'s process: the demo starts, events reach its receiver verified, SIGTERM stops it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.receiver import free_port

CALLHOOK = str(Path(sys.executable).parent / "callhook")


def test_demo_delivers_verified_events_and_stops_cleanly(tmp_path: Path) -> None:
    port, receiver_port = free_port(), free_port()
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [CALLHOOK, "demo", "--port", str(port), "--receiver-port", str(receiver_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    try:
        while not any("✓ verified" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            assert proc.poll() is None, "".join(output)
            if selector.select(timeout=0.5):
                output.append(proc.stdout.readline().decode())
        text = "".join(output)
        token = next(
            line.split(": ", 1)[1].strip() for line in output if line.startswith("API token:")
        )
        assert token.startswith("chk_")
        assert "Webhook secret: whsec_" in text
        assert "✗" not in text  # no delivery failed verification
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v2/webhooks/available",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert len(response.json()["data"]) == 14
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
