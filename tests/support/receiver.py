"""A real HTTPS receiver on loopback (trustme certificates) that records and misbehaves on cue."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from aiohttp import web


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Tls:
    """A CA the worker trusts (``ca_path``), and certificates it issued or did not."""

    ca: trustme.CA
    ca_path: Path
    tmp: Path

    @classmethod
    def create(cls, tmp: Path) -> Tls:
        ca = trustme.CA()
        path = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(path))
        return cls(ca=ca, ca_path=path, tmp=tmp)

    def server_context(self, *, expired: bool = False, untrusted: bool = False) -> ssl.SSLContext:
        ca = trustme.CA() if untrusted else self.ca
        if expired:
            past = datetime.now(UTC) - timedelta(days=30)
            cert = ca.issue_cert(
                "localhost", "127.0.0.1", not_before=past - timedelta(days=30), not_after=past
            )
        else:
            cert = ca.issue_cert("localhost", "127.0.0.1")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx


Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def ok(_request: web.Request) -> web.StreamResponse:
    return web.json_response({"received": True})


@dataclass
class Receiver:
    """Serves POST /hook with ``behaviour``; records every request it reads in full."""

    ssl_context: ssl.SSLContext | None
    behaviour: Behaviour = ok
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://localhost:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body))
        return await self.behaviour(request)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(predicate: Callable[[], bool], *, timeout: float = 15.0) -> None:
    """Poll until ``predicate()``; fail the test if it never holds (a safety net, not a
    performance threshold)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
