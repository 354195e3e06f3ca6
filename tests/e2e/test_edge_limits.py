"""Resource limits at the HTTP edge of a live ``callhook serve`` (issue 11, class 6), probed with
raw sockets: a 64 MiB header, many headers, a huge URL, oversized bodies, slow heads and bodies
(slow-loris), too many connections. Every answer is the spec 002 envelope and closes the
connection; ordinary requests, keep-alive and a body just under the limit still work.

The server runs with short timeouts (1 s) so the slow cases finish quickly; the sizes are the
defaults. Socket timeouts here only guard against hanging, they measure nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa

from callhook.api.edge import EdgeLimits
from callhook.store.db import Database
from callhook.store.tables import events
from tests.factories import make_account, make_platform, make_token, sample_event
from tests.support.rawhttp import GUARD, read_answer, send_until_answered
from tests.support.receiver import free_port

pytestmark = pytest.mark.e2e

CALLHOOK = str(Path(sys.executable).parent / "callhook")
LIMITS = EdgeLimits()
MAX_CONNECTIONS = 8


@dataclass
class Live:
    port: int
    token: str
    account_id: str
    database_url: str

    def stored_events(self) -> int:
        db = Database(self.database_url)
        try:
            with db.read() as conn:
                return int(
                    conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
                )
        finally:
            db.dispose()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=GUARD)


@contextlib.contextmanager
def _serve(tmp: Path, timeout: float) -> Iterator[Live]:
    platform = make_platform(tmp)
    account = make_account(platform, url="https://example.com/hook")
    token = make_token(platform, None, ["events.write"])
    platform.db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_LOG_LEVEL": "WARNING",
        "CALLHOOK_HEADER_TIMEOUT": str(timeout),
        "CALLHOOK_BODY_TIMEOUT": str(timeout),
        "CALLHOOK_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    if platform.settings.master_key:
        env["CALLHOOK_MASTER_KEY"] = platform.settings.master_key
    proc = subprocess.Popen(
        [CALLHOOK, "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_up(port, proc)
        yield Live(port, token, account.id, platform.settings.database_url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with _serve(tmp_path_factory.mktemp("edge"), timeout=1) as server:
        yield server


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Long timeouts, so connections held idle by a test stay open."""
    with _serve(tmp_path_factory.mktemp("edge-patient"), timeout=GUARD) as server:
        yield server


def _wait_until_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"callhook serve exited early: {stderr}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("callhook serve did not come up")


def test_a_64_mib_header_is_refused_431_after_the_limit_not_read_whole(live: Live) -> None:
    with live.connect() as sock:
        total = 64 * 1024 * 1024
        sent = send_until_answered(
            sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", b"a" * 65536, total
        )
        answer = read_answer(sock)
    assert answer.status == 431
    doc = answer.envelope()
    assert doc["errors"] == ["Request header fields too large."]
    assert answer.closed
    # The server stopped reading soon after the limit: far less than the 64 MiB went out.
    assert sent < total // 8


@pytest.mark.parametrize("count", [LIMITS.max_header_count + 1, 2_000, 50_000])
def test_too_many_header_fields_are_refused_431(live: Live, count: int) -> None:
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(count))
    with live.connect() as sock:
        send_until_answered(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", fields, len(fields))
        answer = read_answer(sock)
    assert answer.status == 431
    assert answer.closed
    errors = answer.envelope()["errors"]
    assert errors in (
        ["Too many request header fields: at most 100."],
        ["Request header fields too large."],
    )


@pytest.mark.parametrize(
    "target",
    [
        b"/healthz?" + b"q" * LIMITS.max_url_bytes,
        b"/" + b"a" * 100_000,
        b"/api/v2/webhooks/" + b"%41" * 5_000,
    ],
    ids=["long query", "100 kB path", "long escaped path"],
)
def test_a_huge_url_is_refused_414(live: Live, target: bytes) -> None:
    with live.connect() as sock:
        send_until_answered(sock, b"GET ", target + b" HTTP/1.1\r\nHost: x\r\n\r\n", 10**9)
        answer = read_answer(sock)
    assert answer.status == 414
    assert answer.envelope()["errors"] == ["Request target too long: at most 8192 bytes."]
    assert answer.closed


def _publish_head(live: Live, length: int | None, extra: bytes = b"") -> bytes:
    framing = (
        b"Transfer-Encoding: chunked\r\n" if length is None else b"Content-Length: %d\r\n" % length
    )
    return (
        b"POST /internal/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {live.token}\r\n".encode()
        + framing
        + extra
        + b"\r\n"
    )


def test_a_declared_body_over_the_limit_is_refused_413_before_it_is_sent(live: Live) -> None:
    with live.connect() as sock:
        sock.sendall(_publish_head(live, 10 * 1024 * 1024))
        answer = read_answer(sock)
    assert answer.status == 413
    doc = answer.envelope()
    assert doc == {
        **doc,
        "errors": ["Request body exceeds 256 KiB."],
        "path": "/internal/v1/events",
    }
    assert answer.closed


def test_a_chunked_body_growing_over_the_limit_is_refused_413(live: Live) -> None:
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    with live.connect() as sock:
        send_until_answered(sock, _publish_head(live, None), chunk, 64 * len(chunk))
        answer = read_answer(sock)
    assert answer.status == 413
    assert answer.closed


@pytest.mark.parametrize(
    "sent",
    [b"", b"G", b"GET /healthz HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1"],
    ids=["nothing", "one byte", "request line", "half a header"],
)
def test_a_slow_head_is_answered_408_or_an_idle_connection_closed(live: Live, sent: bytes) -> None:
    with live.connect() as sock:
        sock.sendall(sent)
        if not sent:
            assert sock.recv(100) == b""  # idle: closed without a word
            return
        answer = read_answer(sock)
    assert answer.status == 408
    assert answer.envelope()["errors"] == ["Request headers not received in time."]
    assert answer.closed


def test_slow_loris_trickling_header_bytes_is_cut_off(live: Live) -> None:
    """One byte at a time, each well within any per-read timeout: the head's deadline holds."""
    with live.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        answered = False
        sent = 0
        while not answered and time.monotonic() - start < GUARD:
            try:
                sock.sendall(b"X")
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                break
            answered = bool(select.select([sock], [], [], 0.1)[0])
        answer = read_answer(sock)
    assert answer.status == 408
    assert answer.closed
    assert 0 < sent < 200  # cut off after about a second of trickling, not left open


def test_a_slow_body_is_answered_408_and_nothing_is_stored(live: Live) -> None:
    body = orjson.dumps(sample_event(account_id=live.account_id))
    before = live.stored_events()
    with live.connect() as sock:
        sock.sendall(_publish_head(live, len(body)) + body[:-1])  # all but the last byte
        answer = read_answer(sock)
    assert live.stored_events() == before
    assert answer.status == 408
    doc = answer.envelope()
    assert doc["errors"] == ["Request body not received in time."]
    assert doc["path"] == "/internal/v1/events"
    assert answer.closed


def test_ordinary_requests_keep_alive_and_a_body_just_under_the_limit_work(live: Live) -> None:
    events: list[dict[str, object]] = []
    size = 0
    seed = 0
    while True:  # a batch as close to 256 KiB as whole events get
        event = sample_event(account_id=live.account_id, seed=seed)
        grown = len(orjson.dumps({"events": [*events, event]}))
        if grown > LIMITS.max_body_bytes or len(events) == 1000:
            break
        events.append(event)
        size, seed = grown, seed + 1
    body = orjson.dumps({"events": events})
    assert LIMITS.max_body_bytes - 4096 < size == len(body) <= LIMITS.max_body_bytes
    with live.connect() as sock:
        for _ in range(3):  # keep-alive: several requests on one connection
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_answer(sock, then_closed=False)
            assert answer.status == 200
            assert answer.headers.get("connection") != "close"
        sock.sendall(_publish_head(live, len(body)) + body)  # one write: head and body together
        answer = read_answer(sock, then_closed=False)
        assert answer.status == 202, answer.body[:300]
        assert len(orjson.loads(answer.body)["data"]["events"]) == len(events)


def test_connections_past_the_limit_are_answered_503(patient: Live) -> None:
    live = patient
    held = [live.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        # Each held connection is known to the server once it answered on it.
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(sock, then_closed=False).status == 200
        with live.connect() as extra:
            answer = read_answer(extra)
        assert answer.status == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.envelope()["errors"] == ["Too many connections; retry shortly."]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)  # the server notices the closes
    with live.connect() as again:
        again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(again, then_closed=False).status == 200


@pytest.mark.parametrize("size", [40_000, 1_000_000])
def test_a_client_that_sends_everything_before_reading_still_gets_the_answer(
    live: Live, size: int
) -> None:
    """The answer is followed by a lingering close (shut for writing, the rest of the request
    read and dropped): an immediate close would reset the connection under a client still
    sending, and it would see no answer at all. Also after a first request on the connection."""
    with httpx.Client(base_url=f"http://127.0.0.1:{live.port}") as client:
        assert client.get("/healthz").status_code == 200
        pooled = client.post("/api/v2/webhooks/sms", headers={"X-Padding": "a" * size})
        fresh = httpx.post(
            f"http://127.0.0.1:{live.port}/internal/v1/events",
            headers={"X-Padding": "a" * size},
        )
    for response, path in ((pooled, "/api/v2/webhooks/sms"), (fresh, "/internal/v1/events")):
        assert response.status_code == 431
        assert response.json()["errors"] == ["Request header fields too large."]
        assert response.json()["path"] == path
