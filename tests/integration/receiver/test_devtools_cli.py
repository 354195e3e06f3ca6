"""callhook trigger / listen / verify against real sockets (HTTPS with a trustme CA)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import typer
from typer.testing import CliRunner

from callhook.cli import devtools
from callhook.events import SCENARIOS
from callhook.receiver import WebhookVerificationError, parse, verify

from .receiver_http import (
    REPO,
    SECRET,
    WRONG_SECRET,
    delivery,
    encode,
    free_port,
    post,
    signed_headers,
    wait_for_port,
)

VECTORS: list[dict[str, Any]] = json.loads(
    (REPO / "tests" / "vectors" / "signatures.json").read_text("utf-8")
)["vectors"]


def cli() -> typer.Typer:
    app = typer.Typer()
    devtools.register(app)
    return app


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Endpoint:
    url: str
    ca_file: Path
    received: list[Received] = field(default_factory=list)


def serve(secret: str, ctx: ssl.SSLContext | None, received: list[Received]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = dict(self.headers.items())
            try:
                verify(headers, body, secret)
                ok = True
            except WebhookVerificationError:
                ok = False
            received.append(Received(headers, body, ok))
            answer = b'{"from":"app"}'
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if ctx is not None:
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def https_endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    received: list[Received] = []
    server = serve(SECRET, ctx, received)
    try:
        yield Endpoint(f"https://127.0.0.1:{server.server_address[1]}/hook", ca_file, received)
    finally:
        server.shutdown()
        server.server_close()


def run(*args: str) -> Any:
    return CliRunner().invoke(cli(), list(args))


def test_trigger_one_event_over_https(https_endpoint: Endpoint) -> None:
    ep = https_endpoint
    result = run(
        "trigger",
        "incoming_call_start",
        "--url",
        ep.url,
        "--secret",
        SECRET,
        "--ca-bundle",
        str(ep.ca_file),
    )
    assert result.exit_code == 0, result.output
    [got] = ep.received
    assert got.verified
    event = parse(got.body)
    assert event.event == "incoming_call_start"
    assert event.id.startswith("evt_")
    assert event.account_id == "acc_local"
    assert (event.sequence, event.call_id is not None) == (1, True)
    assert got.headers["X-Webhook-Event"] == "incoming_call_start"
    assert got.headers["webhook-id"] == event.id
    assert got.headers["User-Agent"].startswith("Callhook/")
    assert "→ 200" in result.output


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_trigger_call_scenario_in_order(https_endpoint: Endpoint, scenario: str) -> None:
    ep = https_endpoint
    result = run(
        "trigger",
        "call",
        "--scenario",
        scenario,
        "--url",
        ep.url,
        "--secret",
        SECRET,
        "--ca-bundle",
        str(ep.ca_file),
        "--speed",
        "1000000",
        "--seed",
        "7",
    )
    assert result.exit_code == 0, result.output
    assert len(ep.received) >= 3
    assert all(r.verified for r in ep.received)
    events = [parse(r.body) for r in ep.received]
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    per_call: dict[str, list[int]] = {}
    for e in events:
        if e.call_id is not None:
            assert e.sequence is not None
            per_call.setdefault(e.call_id, []).append(e.sequence)
    assert per_call
    for sequence in per_call.values():
        assert sequence == list(range(1, len(sequence) + 1))


def test_trigger_checks_certificates_and_reports_rejections(https_endpoint: Endpoint) -> None:
    ep = https_endpoint
    untrusted = run("trigger", "sms", "--url", ep.url, "--secret", SECRET)
    assert untrusted.exit_code == 1
    assert ep.received == []
    insecure = run("trigger", "sms", "--url", ep.url, "--secret", SECRET, "--insecure")
    assert insecure.exit_code == 0, insecure.output
    wrong = run(
        "trigger", "sms", "--url", ep.url, "--secret", WRONG_SECRET, "--ca-bundle", str(ep.ca_file)
    )
    assert wrong.exit_code == 1
    assert "→ 401" in wrong.output
    assert [r.verified for r in ep.received] == [True, False]


def test_trigger_unknown_event_and_scenario() -> None:
    assert run("trigger", "nope", "--url", "https://x", "--secret", SECRET).exit_code == 2
    bad = run("trigger", "call", "--scenario", "nope", "--url", "https://x", "--secret", SECRET)
    assert bad.exit_code == 2


# --- verify ---------------------------------------------------------------------------------
VECTOR = next(v for v in VECTORS if v["name"] == "delivery")


def capture(tmp_path: Path, *, as_json: bool, body_suffix: bytes = b"") -> tuple[Path, Path]:
    headers = tmp_path / "headers.txt"
    lines = {"Content-Type": "application/json", **VECTOR["headers"]}
    if as_json:
        headers.write_text(json.dumps(lines))
    else:
        text = "POST /webhook HTTP/1.1\n" + "".join(f"{k}: {v}\n" for k, v in lines.items())
        headers.write_text(text)
    body = tmp_path / "body.json"
    body.write_bytes(VECTOR["body"].encode() + body_suffix)
    return headers, body


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_explains_a_good_capture(tmp_path: Path, as_json: bool) -> None:
    headers, body = capture(tmp_path, as_json=as_json)
    result = run(
        "verify",
        "--secret",
        VECTOR["secrets"][0],
        "--headers",
        str(headers),
        "--body",
        str(body),
        "--now",
        str(VECTOR["timestamp"] + 10),
    )
    assert result.exit_code == 0, result.output
    assert "VERIFIED (callhook scheme)" in result.output
    assert "entry 1 matches secret #1 over the body as given" in result.output


def test_verify_explains_a_bad_capture(tmp_path: Path) -> None:
    headers, body = capture(tmp_path, as_json=False, body_suffix=b"\n")
    result = run(
        "verify",
        "--secret",
        VECTOR["secrets"][0],
        "--headers",
        str(headers),
        "--body",
        str(body),
        "--now",
        "2025-01-15T10:40:00Z",
    )
    assert result.exit_code == 1
    assert "NOT VERIFIED" in result.output
    assert "600 s ago" in result.output
    assert "without its trailing newline" in result.output


# --- listen ---------------------------------------------------------------------------------
LISTEN = (
    "import typer; from callhook.cli import devtools; app = typer.Typer(); "
    "devtools.register(app); app()"
)


def test_listen_verifies_flags_and_forwards() -> None:
    app_received: list[Received] = []
    app_server = serve(SECRET, None, app_received)
    port = free_port()
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LISTEN,
            "listen",
            "--port",
            str(port),
            "--secret",
            SECRET,
            "--forward-to",
            f"http://127.0.0.1:{app_server.server_address[1]}/app",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        first = encode(delivery(eid="evt_1", call_id="c1", sequence=3))
        sent = signed_headers(first, "evt_1")
        reply = post(port, first, sent)
        assert (reply.status, reply.json()) == (200, {"from": "app"})
        forwarded = app_received[0]
        assert forwarded.body == first
        assert forwarded.verified
        for name in ("X-Webhook-Signature", "webhook-signature", "webhook-id"):
            assert forwarded.headers[name] == sent[name]

        again = post(port, first, signed_headers(first, "evt_1"))
        assert again.status == 200
        late = encode(delivery("incoming_call_answer", eid="evt_2", call_id="c1", sequence=2))
        assert post(port, late, signed_headers(late, "evt_2")).status == 200
        # Released past the head-of-line bound: the request says which sequence it went before.
        released = encode(delivery("incoming_call_end", eid="evt_4", call_id="c1", sequence=5))
        behind = {**signed_headers(released, "evt_4"), "X-Webhook-Previous-Sequence": "4"}
        assert post(port, released, behind).status == 200
        assert post(port, released, signed_headers(released, "evt_4") | behind).status == 200

        bad = encode(delivery("voicemail", eid="evt_3"))
        reply = post(port, bad, signed_headers(bad, "evt_3", WRONG_SECRET))
        assert reply.status == 401
        assert len(app_received) == 5  # the bad one never reached the app
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
        app_server.shutdown()
        app_server.server_close()
    assert "Listening on http://127.0.0.1" in output
    assert "duplicate: event id evt_1 was already received" in output
    assert "out of order: call c1 sequence 2 arrived after 3" in output
    # A re-send is a duplicate, not also an ordering problem.
    assert "sequence 3 arrived after 3" not in output
    # Flagged once: its retry is a duplicate only.
    assert output.count("sequence 5 went out before sequence 4 finished") == 1
    assert "duplicate: event id evt_4 was already received" in output
    assert "jumped from sequence 3 to 5" not in output
    assert "BAD SIGNATURE" in output
    assert "no X-Webhook-Signature entry was signed with" in output
    assert "forwarded to http://127.0.0.1" in output


# --- weak secrets ---------------------------------------------------------------------------
WEAK = ["whsec_", "whsec_AA==", "whsec_AAAA", ""]


@pytest.mark.parametrize("weak", WEAK)
def test_every_command_refuses_a_weak_secret_before_doing_anything(
    weak: str, tmp_path: Path, https_endpoint: Endpoint
) -> None:
    headers, body = capture(tmp_path, as_json=True)
    port = free_port()
    commands = {
        "verify": ["verify", "--headers", str(headers), "--body", str(body)],
        "trigger": ["trigger", "sms", "--url", https_endpoint.url, "--insecure"],
        "listen": ["listen", "--port", str(port)],
    }
    for name, args in commands.items():
        result = run(*args, "--secret", weak)
        assert result.exit_code == 2, (name, result.output)
        assert "--secret" in result.output
        assert "NOT VERIFIED" not in result.output
        # The same weak secret in a rotation list is refused too.
        rotated = run(*args, "--secret", SECRET, "--secret", weak)
        assert rotated.exit_code == 2, (name, rotated.output)
        assert "secret #2 of 2" in " ".join(rotated.output.split())
    assert https_endpoint.received == []  # trigger sent nothing
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # listen never listened
