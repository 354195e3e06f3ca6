"""Each example receiver (one per framework adapter) in a real server process, sent real
signed deliveries over a socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .receiver_http import (
    REPO,
    SECRET,
    WRONG_SECRET,
    delivery,
    encode,
    free_port,
    post,
    signed_headers,
    wait_for_lines,
    wait_for_port,
)

EXAMPLES = [
    "fastapi_receiver",
    "flask_receiver",
    "django_receiver",
    "aiohttp_receiver",
    "stdlib_receiver",
]
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@pytest.fixture(params=EXAMPLES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    record = tmp_path / "processed.jsonl"
    env = dict(
        os.environ,
        CALLHOOK_WEBHOOK_SECRET=f"{SECRET},{OLD_SECRET}",
        CALLHOOK_DEDUP_DB=str(tmp_path / "dedup.sqlite3"),
        CALLHOOK_EXAMPLE_RECORD=str(record),
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    script = REPO / "examples" / f"{request.param}.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port, record
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_example_receiver(server: tuple[int, Path]) -> None:
    port, record = server
    first = encode(delivery("incoming_call_start", eid="evt_1", call_id="c1", sequence=1))
    reply = post(port, first, signed_headers(first))
    assert (reply.status, reply.json()) == (200, {"received": True})

    # The same event again (a redelivery with a new id): acknowledged, not processed.
    again = encode(delivery("incoming_call_start", eid="evt_1b", call_id="c1", sequence=1))
    reply = post(port, again, signed_headers(again, "evt_1b"))
    assert (reply.status, reply.json()) == (200, {"received": True, "duplicate": True})

    # Bad signature, no signature, tampered body: 401 and never processed.
    bad = encode(delivery("voicemail", eid="evt_bad"))
    assert post(port, bad, signed_headers(bad, "evt_bad", WRONG_SECRET)).status == 401
    assert post(port, bad, {"Content-Type": "application/json"}).status == 401
    assert post(port, bad + b" ", signed_headers(bad, "evt_bad")).status == 401

    # Verified but not a delivery: 400.
    junk = b'{"event": 1}'
    assert post(port, junk, signed_headers(junk)).status == 400

    # Standard Webhooks headers alone, signed with the old secret during a rotation.
    std = encode(delivery("voicemail", eid="evt_2", pbx_id="pbx-2"))
    headers = signed_headers(std, "evt_2", OLD_SECRET)
    headers = {k: v for k, v in headers.items() if not k.startswith("X-Webhook")}
    assert post(port, std, headers).status == 200

    # An event this code has never heard of is accepted and logged, not an error.
    new = encode(delivery("fax_received", eid="evt_3", pbx_id="pbx-3"))
    assert post(port, new, signed_headers(new, "evt_3")).status == 200

    lines = wait_for_lines(record, 3)
    assert sorted((line["id"], line["outcome"]) for line in lines) == [
        ("evt_1", "call"),
        ("evt_2", "voicemail"),
        ("evt_3", "unhandled"),
    ]


#: Weak secrets as they arrive from the environment (``CALLHOOK_WEBHOOK_SECRET``): an unset
#: ``$SECRET`` after the prefix, a 1-byte key, and a rotation list with one weak entry.
WEAK_ENV = ["whsec_", "whsec_AA==", f"{SECRET},whsec_AAAA"]


@pytest.mark.parametrize("weak", WEAK_ENV)
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_receiver_refuses_a_weak_secret_at_start(
    example: str, weak: str, tmp_path: Path
) -> None:
    port = free_port()
    env = dict(
        os.environ,
        CALLHOOK_WEBHOOK_SECRET=weak,
        CALLHOOK_DEDUP_DB=str(tmp_path / "dedup.sqlite3"),
        CALLHOOK_EXAMPLE_RECORD=str(tmp_path / "processed.jsonl"),
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / f"{example}.py"), "--port", str(port)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    stderr = proc.stderr.decode()
    assert "callhook.errors.InvalidSecret" in stderr
    assert "whsec_" in stderr or "too weak" in stderr
    # It never listened: a forged request has nowhere to go.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
