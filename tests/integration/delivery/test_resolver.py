"""The SSRF guard through real aiohttp requests to a real local HTTPS server (trustme).

Only the DNS answers are scripted (``ScriptedResolver``): a name can answer "public" to the
configure-time check and "loopback" to the delivery, as a rebinding attacker's DNS would.
Every refused request is also checked to have never reached the server.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import pytest_asyncio
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from callhook.core.urlvet import parse_webhook_url
from callhook.delivery.resolver import (
    UnsafeTarget,
    VettingResolver,
    check_url,
    unsafe_target_reason,
)
from callhook.errors import UnsafeURL

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700::1111"


# --- Fakes and fixtures ---------------------------------------------------------------------


class ScriptedResolver(AbstractResolver):
    """Answers from a script: each lookup of a name takes its next answer (the last repeats).

    Names not in the script fail like a real NXDOMAIN. ``calls`` records every lookup.
    """

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self._script = {name: list(answers) for name, answers in script.items()}
        self.calls: list[tuple[str, int, socket.AddressFamily]] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append((host, port, family))
        answers = self._script.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        self.closed = True


class SpyResolver(AbstractResolver):
    """Delegates to the real ``ThreadedResolver`` and records which hosts it was asked for."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.hosts.append(host)
        return await aiohttp.ThreadedResolver().resolve(host, port, family)

    async def close(self) -> None:
        return None


@dataclass
class Server:
    """A local HTTPS server; ``hits`` holds the Host header of every request it answered."""

    port: int
    client_ssl: ssl.SSLContext
    hits: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "rebind.example", "127.0.0.1").configure_cert(context)
    return context


@pytest_asyncio.fixture
async def server(ca: trustme.CA, server_ssl: ssl.SSLContext) -> AsyncIterator[Server]:
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    state = Server(port=0, client_ssl=client_ssl)

    def remember_sni(_obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        state.sni.append(name)

    server_ssl.sni_callback = remember_sni

    async def handle(request: web.Request) -> web.Response:
        state.hits.append(request.host)
        return web.Response(text="delivered")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        await runner.cleanup()


async def post(server: Server, url: str, resolver: AbstractResolver) -> int:
    """POST through a fresh pooled session whose connector uses ``resolver``."""
    connector = aiohttp.TCPConnector(resolver=resolver, ssl=server.client_ssl)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url, data=b"{}", timeout=aiohttp.ClientTimeout(total=30)) as response,
    ):
        await response.read()
        return response.status


# --- Real requests ------------------------------------------------------------------------------


async def test_localhost_is_refused_and_never_reached(server: Server) -> None:
    resolver = VettingResolver()
    with pytest.raises(aiohttp.ClientConnectorDNSError) as caught:
        await post(server, f"https://localhost:{server.port}/hook", resolver)
    await resolver.close()

    # aiohttp wraps the resolver's OSError; the original is .os_error and __cause__.
    assert isinstance(caught.value.os_error, UnsafeTarget)
    assert caught.value.__cause__ is caught.value.os_error
    reason = unsafe_target_reason(caught.value)
    assert reason is not None
    assert reason.startswith("localhost resolves to ")
    assert reason.endswith("(loopback address)")
    assert server.hits == []


async def test_dns_rebinding_is_refused_at_connect_time(server: Server) -> None:
    # The attacker's DNS answers a public address to the check, then loopback to the worker.
    dns = ScriptedResolver({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    url = f"https://rebind.example:{server.port}/hook"

    assert (await check_url(url, resolver=dns)).host == "rebind.example"

    with pytest.raises(aiohttp.ClientConnectorDNSError) as caught:
        await post(server, url, VettingResolver(inner=dns))
    assert unsafe_target_reason(caught.value) == (
        "rebind.example resolves to 127.0.0.1 (loopback address)"
    )
    assert [host for host, _, _ in dns.calls] == ["rebind.example", "rebind.example"]
    assert server.hits == []


async def test_allow_unsafe_connects_to_the_resolved_address_keeping_the_name(
    server: Server,
) -> None:
    dns = ScriptedResolver({"rebind.example": [["127.0.0.1"]]})
    url = f"https://rebind.example:{server.port}/hook"

    assert await post(server, url, VettingResolver(allow_unsafe=True, inner=dns)) == 200
    # Connected to the address the resolver gave, but TLS and HTTP still speak the name.
    assert server.hits == [f"rebind.example:{server.port}"]
    assert server.sni == ["rebind.example"]


async def test_allow_unsafe_reaches_localhost(server: Server) -> None:
    resolver = VettingResolver(allow_unsafe=True)
    assert await post(server, f"https://localhost:{server.port}/hook", resolver) == 200
    await resolver.close()
    assert server.hits == [f"localhost:{server.port}"]


# --- What aiohttp does with IP literals (documented in the resolver module) ---------------------


async def test_canonical_ip_literals_bypass_the_resolver(server: Server) -> None:
    # This is why the sender must run parse_webhook_url before every attempt.
    spy = SpyResolver()
    url = f"https://127.0.0.1:{server.port}/hook"
    assert await post(server, url, VettingResolver(inner=spy)) == 200
    assert spy.hosts == []
    with pytest.raises(UnsafeURL, match="loopback address"):
        parse_webhook_url(url)


@pytest.mark.parametrize(
    "host", ["2130706433", "127.1", "0177.0.0.1", "017700000001", "127.0.0.1."]
)
async def test_aiohttp_refuses_all_decimal_noncanonical_ipv4_itself(
    server: Server, host: str
) -> None:
    spy = SpyResolver()
    with pytest.raises(aiohttp.InvalidUrlClientError):
        await post(server, f"https://{host}:{server.port}/hook", VettingResolver(inner=spy))
    assert spy.hosts == []
    assert server.hits == []
    with pytest.raises(UnsafeURL, match="loopback address"):
        parse_webhook_url(f"https://{host}/hook")


@pytest.mark.parametrize("host", ["0x7f.1", "0x7f000001", "0x7f.0.0.1"])
async def test_hex_ipv4_goes_to_the_resolver_and_is_refused(server: Server, host: str) -> None:
    spy = SpyResolver()
    with pytest.raises(aiohttp.ClientConnectorDNSError) as caught:
        await post(server, f"https://{host}:{server.port}/hook", VettingResolver(inner=spy))
    assert spy.hosts == [host]
    # getaddrinfo decodes the hex form (inet_aton) to loopback.
    assert unsafe_target_reason(caught.value) == f"{host} resolves to 127.0.0.1 (loopback address)"
    assert server.hits == []


# --- VettingResolver contract -------------------------------------------------------------------


async def test_one_unsafe_answer_refuses_the_whole_host() -> None:
    dns = ScriptedResolver({"mixed.example": [[PUBLIC_V4, PUBLIC_V6, "10.0.0.7"]]})
    with pytest.raises(UnsafeTarget) as caught:
        await VettingResolver(inner=dns).resolve("mixed.example", 443, socket.AF_UNSPEC)
    assert (caught.value.host, caught.value.address, caught.value.problem) == (
        "mixed.example",
        "10.0.0.7",
        "private address",
    )


async def test_every_family_is_vetted_whatever_aiohttp_asks_for() -> None:
    dns = ScriptedResolver({"v6bad.example": [[PUBLIC_V4, "::ffff:169.254.169.254"]]})
    with pytest.raises(UnsafeTarget, match="cloud metadata"):
        await VettingResolver(inner=dns).resolve("v6bad.example", 443, socket.AF_INET)
    assert dns.calls == [("v6bad.example", 443, socket.AF_UNSPEC)]


async def test_safe_answers_are_returned_filtered_to_the_requested_family() -> None:
    dns = ScriptedResolver({"good.example": [[PUBLIC_V4, PUBLIC_V6]]})
    resolver = VettingResolver(inner=dns)
    both = await resolver.resolve("good.example", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in both] == [PUBLIC_V4, PUBLIC_V6]
    only_v6 = await resolver.resolve("good.example", 443, socket.AF_INET6)
    assert [r["host"] for r in only_v6] == [PUBLIC_V6]


async def test_no_answer_of_the_requested_family_is_a_lookup_failure() -> None:
    dns = ScriptedResolver({"v4only.example": [[PUBLIC_V4]]})
    with pytest.raises(socket.gaierror):
        await VettingResolver(inner=dns).resolve("v4only.example", 443, socket.AF_INET6)


async def test_unparseable_answer_is_refused() -> None:
    dns = ScriptedResolver({"odd.example": [["not-an-address"]]})
    with pytest.raises(UnsafeTarget, match="unparseable address"):
        await VettingResolver(inner=dns).resolve("odd.example", 443)


async def test_allow_unsafe_passes_answers_through() -> None:
    dns = ScriptedResolver({"lan.example": [["10.0.0.7", "fd00::1"]]})
    records = await VettingResolver(allow_unsafe=True, inner=dns).resolve(
        "lan.example", 80, socket.AF_UNSPEC
    )
    assert [r["host"] for r in records] == ["10.0.0.7", "fd00::1"]


async def test_a_passed_inner_resolver_is_not_closed() -> None:
    dns = ScriptedResolver({})
    await VettingResolver(inner=dns).close()
    assert not dns.closed


def test_unsafe_target_survives_pickling() -> None:
    original = UnsafeTarget("a.example", "127.0.0.1", "loopback address")
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.host, copy.address, copy.problem, copy.reason, str(copy)) == (
        "a.example",
        "127.0.0.1",
        "loopback address",
        "a.example resolves to 127.0.0.1 (loopback address)",
        "a.example resolves to 127.0.0.1 (loopback address)",
    )


# --- check_url -------------------------------------------------------------------------------


async def test_check_url_refuses_http_without_resolving() -> None:
    dns = ScriptedResolver({"hooks.example.com": [[PUBLIC_V4]]})
    with pytest.raises(UnsafeURL) as caught:
        await check_url("http://hooks.example.com/hook", resolver=dns)
    assert caught.value.message == "Webhook URLs must use HTTPS."
    assert dns.calls == []


async def test_check_url_refuses_a_name_resolving_to_loopback() -> None:
    dns = ScriptedResolver({"loop.example": [[PUBLIC_V4, "127.0.0.1"]]})
    with pytest.raises(UnsafeURL) as caught:
        await check_url("https://loop.example/hook", resolver=dns)
    assert caught.value.message == (
        "Webhook URL host 'loop.example' resolves to a non-public address: loopback address. "
        "Webhooks can only be delivered to publicly routable addresses."
    )
    # The customer is told the kind of address, never which one our resolver saw.
    assert "127.0.0.1" not in caught.value.message
    assert isinstance(caught.value.__cause__, UnsafeTarget)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://localhost/hook", "is a local or internal name"),
        ("https://[::1]/hook", "non-public address: loopback address"),
        ("https://2130706433/hook", "non-public address: loopback address"),
    ],
)
async def test_check_url_refuses_loopback_literals_and_names(url: str, problem: str) -> None:
    with pytest.raises(UnsafeURL) as caught:
        await check_url(url)
    assert problem in caught.value.message


async def test_check_url_resolves_with_the_default_resolver() -> None:
    # Name rules refuse "localhost" before any lookup unless allow_unsafe; with it, the
    # default ThreadedResolver really resolves it (and is closed afterwards).
    parsed = await check_url("https://localhost:8443/hook", allow_unsafe=True)
    assert (parsed.host, parsed.port) == ("localhost", 8443)


async def test_check_url_reports_an_unresolvable_host() -> None:
    dns = ScriptedResolver({})
    with pytest.raises(UnsafeURL) as caught:
        await check_url("https://nowhere.example/hook", resolver=dns)
    assert caught.value.message == (
        "Webhook URL is not usable: could not resolve host 'nowhere.example'."
    )
    assert isinstance(caught.value.__cause__, socket.gaierror)


async def test_check_url_gives_up_on_a_resolver_that_never_answers() -> None:
    class Hanging(ScriptedResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    with pytest.raises(UnsafeURL) as caught:
        await check_url("https://slow.example/", resolver=Hanging({}), timeout=0.01)
    assert caught.value.message == (
        "Webhook URL is not usable: could not resolve host 'slow.example' (timed out)."
    )


async def test_check_url_accepts_public_names_and_returns_the_normalized_url() -> None:
    dns = ScriptedResolver({"xn--bcher-kva.example": [[PUBLIC_V4, PUBLIC_V6]]})
    parsed = await check_url("HTTPS://Bücher.example:443/hook?x=1", resolver=dns)
    assert parsed.url == "https://xn--bcher-kva.example/hook?x=1"
    assert dns.calls == [("xn--bcher-kva.example", 443, socket.AF_UNSPEC)]


async def test_check_url_allow_unsafe_accepts_http_and_loopback() -> None:
    dns = ScriptedResolver({"dev.example": [["127.0.0.1"]]})
    parsed = await check_url("http://dev.example:8080/hook", allow_unsafe=True, resolver=dns)
    assert parsed.url == "http://dev.example:8080/hook"


# --- unsafe_target_reason ----------------------------------------------------------------------


def test_unsafe_target_reason_is_none_for_other_errors() -> None:
    assert unsafe_target_reason(ConnectionRefusedError("refused")) is None
    assert unsafe_target_reason(socket.gaierror(socket.EAI_NONAME, "nope")) is None


def test_unsafe_target_reason_follows_context_groups_and_cycles() -> None:
    target = UnsafeTarget("a.example", "10.0.0.1", "private address")
    outer = RuntimeError("outer")
    outer.__context__ = target
    group = ExceptionGroup("attempts", [ValueError("first"), outer])
    assert unsafe_target_reason(group) == "a.example resolves to 10.0.0.1 (private address)"

    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert unsafe_target_reason(first) is None
