"""The SSRF guard's I/O edge: resolve a webhook host, vet every address, hand out only those.

:class:`VettingResolver` is the lookup the sender's transport (``delivery/_transport.py``)
pins its connections to (``CURLOPT_CONNECT_TO``), and it plugs into
``aiohttp.TCPConnector(resolver=...)`` too. Either way the connection goes to exactly the
addresses it returned (TLS SNI and the ``Host`` header stay the name), so vetting inside the
resolver leaves no DNS-rebinding window between "checked" and "connected": there is no second
lookup.

What aiohttp 3.14 does with IP-literal hosts (established by
``tests/integration/delivery/test_resolver.py``, which fails if it changes):

* Canonical literals (``127.0.0.1``, ``[::1]``, ``[::ffff:127.0.0.1]``) never reach the
  resolver: ``TCPConnector._resolve_host`` connects to them directly. **The resolver cannot
  vet them**, so the sender must call :func:`callhook.core.urlvet.parse_webhook_url` before
  every attempt (it refuses unsafe literals in every spelling).
* All-decimal non-canonical forms (``2130706433``, ``127.1``, ``0177.0.0.1``,
  ``017700000001``, ``127.0.0.1.``) are refused by aiohttp itself with
  ``aiohttp.InvalidUrlClientError`` (not an ``OSError``), without calling the resolver.
* Hex forms (``0x7f.1``, ``0x7f000001``) do not look like addresses to aiohttp, so they go
  to the resolver as names; ``getaddrinfo`` decodes them (``inet_aton``) to ``127.0.0.1``,
  which this resolver then refuses.
* aiohttp calls ``resolve(host, port, family=AF_UNSPEC)`` by default (the connector's
  ``family``), and caches results per connector (``ttl_dns_cache``); only vetted results are
  ever cached because refused lookups raise.
* An ``OSError`` raised by the resolver reaches the caller of ``session.post(...)`` as
  ``aiohttp.ClientConnectorDNSError`` (a ``ClientConnectorError``/``ClientOSError``/
  ``OSError``) whose ``.os_error`` and ``__cause__`` are the original exception.
  :func:`unsafe_target_reason` digs it out.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from callhook.core.urlvet import WebhookURL, address_problem, parse_webhook_url
from callhook.errors import UnsafeURL

__all__ = ["UnsafeTarget", "VettingResolver", "check_url", "unsafe_target_reason"]

DEFAULT_RESOLVE_TIMEOUT = 10.0


class UnsafeTarget(OSError):
    """A host resolved to an address we must not connect to; the whole host is refused.

    An ``OSError`` so aiohttp treats it as a failed lookup (and wraps it in
    ``ClientConnectorDNSError``). ``host`` is the name, ``address`` the offending address as
    text, ``problem`` the short :func:`~callhook.core.urlvet.address_problem` reason, and
    ``reason`` the full sentence, e.g. ``"rebind.example resolves to 127.0.0.1 (loopback
    address)"``. ``reason`` names the address: it is for our operators and attempt logs;
    messages shown to customers use ``problem`` only (see :func:`check_url`).
    """

    def __init__(self, host: str, address: str, problem: str) -> None:
        self.host = host
        self.address = address
        self.problem = problem
        self.reason = f"{host} resolves to {address} ({problem})"
        super().__init__(self.reason)

    def __reduce__(self) -> tuple[type[UnsafeTarget], tuple[str, str, str]]:
        # OSError's own pickling would call __init__ with the wrong arguments.
        return (type(self), (self.host, self.address, self.problem))


def _parse_resolved(text: str) -> IPv4Address | IPv6Address | None:
    # getnameinfo spells link-local IPv6 with a zone ("fe80::1%eth0"); ipaddress accepts it.
    try:
        return ip_address(text)
    except ValueError:
        return None


class VettingResolver(AbstractResolver):
    """An aiohttp resolver that refuses a host when ANY of its addresses is unsafe.

    ``resolve()`` asks ``inner`` for every A and AAAA record (``AF_UNSPEC``, whatever family
    aiohttp asked for), vets each with :func:`~callhook.core.urlvet.address_problem`, raises
    :class:`UnsafeTarget` if one fails (an address that does not parse counts as a failure),
    and otherwise returns the records of the requested family. Refusing the whole host, not
    just the bad records, stops a name that mixes a public and a private answer from being
    used at all. With ``allow_unsafe=True`` (development only) records pass unvetted.

    ``inner`` defaults to an ``aiohttp.ThreadedResolver`` created on first use (it needs a
    running loop) and closed by :meth:`close`; an ``inner`` you pass stays yours to close.
    """

    def __init__(
        self, *, allow_unsafe: bool = False, inner: AbstractResolver | None = None
    ) -> None:
        self._allow_unsafe = allow_unsafe
        self._inner = inner
        self._owns_inner = inner is None

    def _get_inner(self) -> AbstractResolver:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        return self._inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and return only vetted records; raise :class:`UnsafeTarget`."""
        records = await self._get_inner().resolve(host, port, socket.AF_UNSPEC)
        if not self._allow_unsafe:
            for record in records:
                address = _parse_resolved(record["host"])
                problem = "unparseable address" if address is None else address_problem(address)
                if problem is not None:
                    raise UnsafeTarget(host, record["host"], problem)
        if family != socket.AF_UNSPEC:
            records = [r for r in records if r["family"] == family]
        if not records:
            # aiohttp expects a non-empty list or an OSError.
            raise socket.gaierror(socket.EAI_NONAME, f"No usable address for {host}")
        return records

    async def close(self) -> None:
        """Close the inner resolver if this resolver created it."""
        if self._owns_inner and self._inner is not None:
            await self._inner.close()
            self._inner = None


async def check_url(
    url: str,
    *,
    allow_unsafe: bool = False,
    resolver: AbstractResolver | None = None,
    timeout: float = DEFAULT_RESOLVE_TIMEOUT,
) -> WebhookURL:
    """Configure-time check: parse, resolve and vet ``url``; return the normalized URL.

    ``resolver`` is the *raw* resolver to ask (default: ``aiohttp.ThreadedResolver``); it is
    wrapped in a :class:`VettingResolver`. IP-literal hosts are vetted by
    :func:`~callhook.core.urlvet.parse_webhook_url` and not resolved. Raises
    :class:`callhook.errors.UnsafeURL`, chained ``from`` the cause, when the URL is refused,
    when the host resolves to any non-public address, or when it cannot be resolved within
    ``timeout`` seconds ("could not resolve host"). Messages name the kind of address, never
    the address itself: what our resolver sees of internal names is not the customer's
    business.

    Passing here does not make later deliveries safe by itself (DNS can change); the sender
    must connect through a :class:`VettingResolver` too.
    """
    parsed = parse_webhook_url(url, allow_unsafe=allow_unsafe)
    if parsed.literal_ip is not None:
        return parsed
    vetting = VettingResolver(allow_unsafe=allow_unsafe, inner=resolver)
    try:
        async with asyncio.timeout(timeout):
            await vetting.resolve(parsed.host, parsed.port, socket.AF_UNSPEC)
    except UnsafeTarget as exc:
        raise UnsafeURL(
            f"Webhook URL host '{parsed.host}' resolves to a non-public address: "
            f"{exc.problem}. Webhooks can only be delivered to publicly routable addresses."
        ) from exc
    except TimeoutError as exc:
        raise UnsafeURL(
            f"Webhook URL is not usable: could not resolve host '{parsed.host}' (timed out)."
        ) from exc
    except OSError as exc:
        raise UnsafeURL(
            f"Webhook URL is not usable: could not resolve host '{parsed.host}'."
        ) from exc
    finally:
        await vetting.close()
    return parsed


def unsafe_target_reason(exc: BaseException) -> str | None:
    """The :attr:`UnsafeTarget.reason` behind ``exc``, or ``None`` if none caused it.

    Walks ``__cause__``, ``__context__``, aiohttp's ``ClientConnectorError.os_error`` and the
    members of exception groups, so the sender can classify an attempt that failed inside
    ``session.post(...)`` as ``unsafe_target``. Cycles are safe.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UnsafeTarget):
            return current.reason
        if isinstance(current, aiohttp.ClientConnectorError):
            stack.append(current.os_error)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return None
