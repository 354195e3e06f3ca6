"""The development listeners — the demo receiver of ``make run`` and ``callhook listen`` — bound
what a client may send (issue 11, class 6), probed with raw sockets on real aiohttp servers set
up as the CLI sets them up (``callhook.listeners``), with 1-second deadlines."""

from __future__ import annotations

import asyncio
import base64
import io
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from aiohttp import web
from rich.console import Console

from callhook.cli.devtools_listen import Listener, make_app
from callhook.demo import DemoReceiver
from callhook.listeners import LIMITS, ListenerLimits
from tests.support.rawhttp import GUARD, read_answer, send_until_answered
from tests.support.receiver import free_port

FAST = replace(LIMITS, head_timeout=1.0, body_timeout=1.0)
SECRET = "whsec_" + base64.b64encode(b"listener test key, 32 bytes long").decode()


def _demo(limits: ListenerLimits) -> web.Application:
    return DemoReceiver(secrets=lambda: [SECRET]).app(limits)


def _listen(limits: ListenerLimits) -> web.Application:
    return make_app(Listener([SECRET], console=Console(file=io.StringIO())), limits)


APPS: dict[str, Callable[[ListenerLimits], web.Application]] = {
    "demo receiver": _demo,
    "callhook listen": _listen,
}
PATHS = {"demo receiver": b"/webhook", "callhook listen": b"/"}


@pytest.fixture(params=sorted(APPS))
def listener(request: pytest.FixtureRequest) -> Iterator[tuple[int, bytes]]:
    name: str = request.param
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = free_port()
    runner = web.AppRunner(APPS[name](FAST), access_log=None, **FAST.server_options())

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(GUARD)
    try:
        yield port, PATHS[name]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(GUARD)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(GUARD)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=GUARD)


def test_a_64_mib_header_is_refused_without_reading_it(listener: tuple[int, bytes]) -> None:
    port, path = listener
    total = 64 * 1024 * 1024
    with _connect(port) as sock:
        head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nX-Big: "
        sent = send_until_answered(sock, head, b"a" * 65536, total)
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.closed
    assert sent < total // 8


@pytest.mark.parametrize(
    ("head", "filler", "total"),
    [
        (b"POST /", b"a" * 65536, 10**6),  # a 1 MB request target
        (b"POST /webhook HTTP/1.1\r\nHost: x\r\n", b"X-A: 1\r\n" * 1000, 50 * 8000),  # 50,000
    ],
    ids=["huge URL", "many headers"],
)
def test_a_huge_url_or_many_headers_are_refused(
    listener: tuple[int, bytes], head: bytes, filler: bytes, total: int
) -> None:
    port, _path = listener
    with _connect(port) as sock:
        send_until_answered(sock, head, filler, total)
        answer = read_answer(sock)
    assert answer.status == 400
    assert answer.closed


def test_a_body_over_the_limit_is_refused_413(listener: tuple[int, bytes]) -> None:
    port, path = listener
    size = LIMITS.max_body_bytes + 1
    with _connect(port) as sock:
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path, size)
        send_until_answered(sock, head, b"{" * 65536, size)
        answer = read_answer(sock, then_closed=False)
    assert answer.status == 413


def test_a_slow_body_is_answered_408(listener: tuple[int, bytes]) -> None:
    port, path = listener
    with _connect(port) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{" % path)
        answer = read_answer(sock, then_closed=False)
    assert answer.status == 408


def test_slow_loris_is_cut_off(listener: tuple[int, bytes]) -> None:
    """A head trickling in one byte at a time is closed at the head deadline."""
    port, path = listener
    with _connect(port) as sock:
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        sent = 0
        closed = False
        while not closed and time.monotonic() - start < GUARD:
            try:
                sock.sendall(b"X")
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if select.select([sock], [], [], 0.1)[0]:
                closed = sock.recv(65536) == b""
    assert closed
    assert 0 < sent < 200
