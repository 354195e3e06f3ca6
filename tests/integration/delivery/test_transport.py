"""The sender's libcurl transport against real local HTTPS servers (trustme certificates).

Pinning (the connection goes to the vetted address while SNI and Host keep the name),
fallback to the next vetted address, connection reuse, the time limit against a TLS handshake
that never ends, and the CA bundle used when none is configured. Only DNS answers are scripted.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from callhook.core.clock import FakeClock
from callhook.core.urlvet import parse_webhook_url
from callhook.delivery import _transport
from callhook.delivery._transport import Transport
from callhook.delivery.resolver import UnsafeTarget
from callhook.delivery.sender import Sender
from callhook.settings import Settings
from tests.support.receiver import Tls


class Dns(AbstractResolver):
    """Answers every name with ``addresses``; ``asked`` records the names looked up."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


@dataclass
class Server:
    port: int = 0
    hosts: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)


@pytest_asyncio.fixture
async def server(tls: Tls) -> AsyncIterator[Server]:
    """HTTPS on 127.0.0.1 with a certificate for ``hooks.example`` and ``localhost``."""
    state = Server()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.ca.issue_cert("hooks.example", "localhost").configure_cert(context)
    context.sni_callback = lambda _obj, name, _ctx: state.sni.append(name)

    async def handle(request: web.Request) -> web.Response:
        state.hosts.append(request.host)
        state.connections.add(id(request.transport))
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


def settings(tls: Tls, **overrides: object) -> Settings:
    values: dict[str, object] = {"ca_bundle": tls.ca_path, "allow_unsafe_targets": True}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def post(transport: Transport, url: str) -> _transport.Exchange:
    target = parse_webhook_url(url, allow_unsafe=True)
    addresses = () if target.literal_ip is not None else await transport.addresses(target)
    return await transport.post(
        target,
        body=b'{"n": 1}',
        headers=["Content-Type: application/json"],
        addresses=addresses,
        seconds=10,
    )


async def test_a_name_is_pinned_to_its_vetted_address_keeping_sni_and_host(
    tls: Tls, server: Server
) -> None:
    dns = Dns("127.0.0.1")
    transport = Transport(settings(tls), dns=dns)
    transport.open()
    try:
        exchange = await post(transport, f"https://hooks.example:{server.port}/hook")
    finally:
        await transport.close()
    assert (exchange.errno, exchange.answer.status, bytes(exchange.answer.body)) == (0, 200, b"ok")
    assert dns.asked == ["hooks.example"]  # libcurl never looked the name up itself
    assert server.sni == ["hooks.example"]
    assert server.hosts == [f"hooks.example:{server.port}"]


async def test_the_next_vetted_address_is_tried_when_one_refuses(tls: Tls, server: Server) -> None:
    # Nothing listens on 127.0.0.2 at the server's port: the connection is refused.
    transport = Transport(settings(tls), dns=Dns("127.0.0.2", "127.0.0.1"))
    transport.open()
    try:
        exchange = await post(transport, f"https://hooks.example:{server.port}/hook")
    finally:
        await transport.close()
    assert (exchange.errno, exchange.answer.status) == (0, 200)
    assert server.hosts == [f"hooks.example:{server.port}"]


async def test_an_unsafe_answer_refuses_the_host_before_connecting(
    tls: Tls, server: Server
) -> None:
    transport = Transport(settings(tls, allow_unsafe_targets=False), dns=Dns("127.0.0.1"))
    transport.open()
    try:
        target = parse_webhook_url(f"https://hooks.example:{server.port}/hook")
        with pytest.raises(UnsafeTarget) as caught:
            await transport.addresses(target)
        assert transport.cached(target) is None  # refusals are not cached
    finally:
        await transport.close()
    assert caught.value.reason == "hooks.example resolves to 127.0.0.1 (loopback address)"
    assert server.hosts == []


async def test_a_proxy_in_the_environment_is_not_used(
    tls: Tls, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would connect wherever it likes, past the pinned address.
    proxied: list[asyncio.StreamWriter] = []

    async def proxy(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxied.append(writer)
        writer.close()

    listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy_url)
    transport = Transport(settings(tls), dns=Dns("127.0.0.1"))
    transport.open()
    try:
        exchange = await post(transport, f"https://hooks.example:{server.port}/hook")
    finally:
        await transport.close()
        listener.close()
        await listener.wait_closed()
    assert (exchange.errno, exchange.answer.status) == (0, 200)
    assert proxied == []
    assert server.hosts == [f"hooks.example:{server.port}"]


async def test_keep_alive_connections_are_reused(tls: Tls, server: Server) -> None:
    dns = Dns("127.0.0.1")
    transport = Transport(settings(tls), dns=dns)
    transport.open()
    try:
        for _ in range(20):
            exchange = await post(transport, f"https://hooks.example:{server.port}/hook")
            assert exchange.answer.status == 200
    finally:
        await transport.close()
    assert len(server.hosts) == 20
    assert len(server.connections) == 1  # one TLS handshake for twenty deliveries
    assert dns.asked == ["hooks.example"]  # vetted answers are cached


async def test_concurrent_posts_to_one_endpoint_open_one_connection_each_at_most(
    tls: Tls, server: Server
) -> None:
    transport = Transport(settings(tls, worker_max_in_flight=8), dns=Dns("127.0.0.1"))
    transport.open()
    try:
        for _ in range(3):
            results = await asyncio.gather(
                *(post(transport, f"https://hooks.example:{server.port}/hook") for _ in range(8))
            )
            assert [r.answer.status for r in results] == [200] * 8
    finally:
        await transport.close()
    assert len(server.hosts) == 24
    assert len(server.connections) <= 8


async def test_a_tls_handshake_that_never_ends_is_a_timeout(tls: Tls) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept the TCP connection, never answer the ClientHello

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with Sender(settings(tls, delivery_timeout=0.5), clock=FakeClock()) as sender:
            sent = await sender.send(url=f"https://127.0.0.1:{port}/hook", body=b"{}", headers={})
    finally:
        for writer in accepted:
            writer.close()
        listener.close()
        await listener.wait_closed()
    assert len(accepted) == 1
    assert sent.outcome.error_class == "timeout"
    assert sent.outcome.message == "no complete response within 0.5 s"
    assert sent.response_body is None


def test_without_a_configured_bundle_the_system_bundle_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The pycurl wheel's libcurl looks for a Red Hat path; we always name a file that exists.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    assert _transport.system_ca_bundle() in (
        _transport.DEBIAN_CA_BUNDLE,
        ssl.get_default_verify_paths().openssl_cafile,
    )
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert _transport.system_ca_bundle() == str(bundle)


async def test_without_a_configured_bundle_certificates_are_checked_against_the_system_one(
    tls: Tls, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSSL's system bundle, as SSL_CERT_FILE names it: here, the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_path))
    transport = Transport(settings(tls, ca_bundle=None), dns=Dns("127.0.0.1"))
    transport.open()
    try:
        exchange = await post(transport, f"https://hooks.example:{server.port}/hook")
    finally:
        await transport.close()
    assert (exchange.errno, exchange.answer.status) == (0, 200)
