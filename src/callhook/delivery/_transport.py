"""The one seam between the sender and the network (private to the sender): resolve and vet the
host, pin the connection to a vetted address, POST with libcurl, hand back what happened.

Rules kept here (docs/architecture.md, "Delivery"):

* **SSRF pinning.** A host name is resolved by :class:`~callhook.delivery.resolver.
  VettingResolver` (every A and AAAA record vetted; one unsafe record refuses the host) and the
  connection is pinned to a vetted address with ``CURLOPT_CONNECT_TO``: libcurl never resolves
  the name itself, while TLS SNI, certificate checks and the ``Host`` header keep the name.
  Vetted answers are cached for 10 s per host and port (as aiohttp's connector did); refused
  ones are not cached. IP-literal hosts were vetted by the caller (``parse_webhook_url``) and
  are connected to as written. When a host has several addresses and one refuses the
  connection, the next is tried within the same time limit.
* **HTTPS only** (plain HTTP too with ``allow_unsafe_targets``), certificates and names
  verified against ``ca_bundle`` or the system bundle, TLS 1.2 or later, HTTP/1.1, redirects
  never followed, no ``Accept-Encoding`` (bodies are stored as sent), no proxy (the
  environment's ``https_proxy`` is ignored, as aiohttp ignored it).
* **One time limit** (``delivery_timeout``) for the whole attempt: resolving, connecting, TLS,
  sending, the answer's head and as much of its body as is kept.
* **Connections are reused** (a new TLS connection costs about 1 ms of CPU, a request on a
  warm one well under 0.1 ms): one ``CurlMulti`` per sender keeps up to
  ``worker_max_in_flight`` connections, idle ones included, for up to ``IDLE_SECONDS`` idle,
  and TLS sessions; easy handles are pooled too. libcurl opens a second connection to an
  endpoint only while every open one is busy, so a worker holds per endpoint at most as many
  connections as it has attempts in flight to it (``worker_per_endpoint_limit``, 32).
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from typing import Final

import pycurl
from aiohttp.abc import AbstractResolver

from callhook.core.clock import monotonic
from callhook.core.urlvet import WebhookURL
from callhook.delivery._head import Answer
from callhook.delivery.resolver import VettingResolver
from callhook.settings import Settings

#: Where Debian and Ubuntu keep the system CA bundle. The pycurl wheel's libcurl was built to
#: look for a Red Hat path, which does not exist here, so the bundle is always set explicitly.
DEBIAN_CA_BUNDLE: Final = "/etc/ssl/certs/ca-certificates.crt"
DNS_TTL: Final = 10.0
#: A connection idle longer than this is closed rather than reused: endpoints' servers drop idle
#: keep-alive connections on their own timers (as aiohttp's connector did, 60 s).
IDLE_SECONDS: Final = 60
_HANDLE_POOL: Final = 256


def system_ca_bundle() -> str:
    """The system CA bundle file: OpenSSL's default (``SSL_CERT_FILE`` honoured), else
    Debian's."""
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and os.path.isfile(cafile):
        return cafile
    return DEBIAN_CA_BUNDLE


@dataclass(slots=True)
class Exchange:
    """What one POST came to: libcurl's ``errno`` (0: no error) and ``message``, and the
    ``answer`` as far as it arrived."""

    errno: int
    message: str
    answer: Answer


class Transport:
    """POSTs over pooled, pinned connections. Open with :meth:`open` on the loop that will use
    it; :meth:`close` closes every connection."""

    def __init__(self, settings: Settings, *, dns: AbstractResolver | None = None) -> None:
        # ``dns``: the raw resolver the VettingResolver asks (default: the system's, threaded).
        self._settings = settings
        self._dns_inner = dns
        self._ca = str(settings.ca_bundle) if settings.ca_bundle is not None else None
        self._resolver: VettingResolver | None = None
        self._multi: pycurl.AsyncCurlMulti | None = None
        self._handles: list[pycurl.Curl] = []
        self._dns: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
        protocols = pycurl.PROTO_HTTPS
        if settings.allow_unsafe_targets:
            protocols |= pycurl.PROTO_HTTP
        self._protocols = protocols

    def open(self) -> None:
        """Create the connection pool; it binds to the event loop of its first transfer."""
        # pycurl's own asyncio driver: libcurl's multi-socket API on this loop's readers,
        # writers and timers; no threads. Its connection cache is what reuses connections.
        in_flight = max(self._settings.worker_max_in_flight, 1)
        multi = pycurl.AsyncCurlMulti()
        multi.setopt(pycurl.M_MAXCONNECTS, in_flight)
        multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, in_flight)
        # As high as the total: a transfer must never wait for a connection inside its time
        # limit. Per-endpoint fairness is the worker's (worker_per_endpoint_limit).
        multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, in_flight)
        self._multi = multi
        self._resolver = VettingResolver(
            allow_unsafe=self._settings.allow_unsafe_targets, inner=self._dns_inner
        )
        if self._ca is None:
            self._ca = system_ca_bundle()

    async def close(self) -> None:
        """End every transfer, close every connection and the resolver. Idempotent."""
        if self._multi is not None:
            await self._multi.aclose()
            self._multi = None
        for handle in self._handles:
            handle.close()
        self._handles.clear()
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def cached(self, target: WebhookURL) -> tuple[str, ...] | None:
        """The vetted addresses for ``target``'s host if a lookup of it is still fresh."""
        cached = self._dns.get((target.host, target.port))
        if cached is not None and cached[0] > monotonic():
            return cached[1]
        return None

    async def addresses(self, target: WebhookURL) -> tuple[str, ...]:
        """The vetted addresses to connect to for a host name (cached ``DNS_TTL`` seconds).

        Raises :class:`~callhook.delivery.resolver.UnsafeTarget` (an ``OSError``) when any
        record is unsafe, another ``OSError`` when the name does not resolve."""
        assert self._resolver is not None, "open() first"
        key = (target.host, target.port)
        cached = self._dns.get(key)
        now = monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        records = await self._resolver.resolve(target.host, target.port, socket.AF_UNSPEC)
        found = tuple(dict.fromkeys(r["host"] for r in records))
        if len(self._dns) > 4096:
            self._dns.clear()
        self._dns[key] = (now + DNS_TTL, found)
        return found

    async def post(
        self,
        target: WebhookURL,
        *,
        body: bytes,
        headers: list[str],
        addresses: tuple[str, ...],
        seconds: float,
    ) -> Exchange:
        """POST ``body`` to ``target`` within ``seconds``; pinned to ``addresses`` in order
        (empty for an IP-literal host). Never raises for what the endpoint does."""
        multi = self._multi
        assert multi is not None, "open() first"
        deadline = monotonic() + seconds
        tries = addresses or ("",)
        for i, address in enumerate(tries):
            remaining = deadline - monotonic()
            answer = Answer(self._settings.response_body_limit)
            if remaining <= 0:
                return Exchange(pycurl.E_OPERATION_TIMEDOUT, "time limit reached", answer)
            handle = self._prepare(target, address, body, headers, answer, remaining)
            try:
                await multi.perform(handle)
                errno, message = 0, ""
            except pycurl.error as exc:
                # (code, message), as libcurl reported it.
                errno, message = int(exc.args[0]), str(exc.args[-1])
            # Cancelled mid-transfer, the handle is dropped instead (its connection closed).
            self._release(handle)
            last = i == len(tries) - 1
            if errno == pycurl.E_COULDNT_CONNECT and not last:
                continue  # nothing was sent: try the next vetted address
            return Exchange(errno, message, answer)
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare(
        self,
        target: WebhookURL,
        address: str,
        body: bytes,
        headers: list[str],
        answer: Answer,
        seconds: float,
    ) -> pycurl.Curl:
        handle = self._handles.pop() if self._handles else self._new_handle()
        handle.setopt(pycurl.URL, target.url)
        if address:
            pinned = f"[{address}]" if ":" in address else address
            handle.setopt(
                pycurl.CONNECT_TO, [f"{target.host}:{target.port}:{pinned}:{target.port}"]
            )
        else:
            handle.unsetopt(pycurl.CONNECT_TO)
        handle.setopt(pycurl.HTTPHEADER, headers)
        handle.setopt(pycurl.POSTFIELDS, body)  # pycurl sets the size (NULs allowed)
        # One limit for everything: connecting, TLS, sending, the head, the kept body.
        handle.setopt(pycurl.TIMEOUT_MS, max(int(seconds * 1000), 1))
        handle.setopt(pycurl.HEADERFUNCTION, answer.on_header)
        handle.setopt(pycurl.WRITEFUNCTION, answer.on_body)
        return handle

    def _release(self, handle: pycurl.Curl) -> None:
        # Its callbacks and body are replaced by the next transfer that takes it.
        if len(self._handles) < _HANDLE_POOL:
            self._handles.append(handle)
        else:
            handle.close()

    def _new_handle(self) -> pycurl.Curl:
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)
        # libcurl honours https_proxy / ALL_PROXY from the environment by default: a proxy would
        # connect wherever it likes, past the pinned address. Deliveries never use one.
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.POST, 1)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PROTOCOLS, self._protocols)
        handle.setopt(pycurl.REDIR_PROTOCOLS, self._protocols)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.SSL_VERIFYPEER, 1)
        handle.setopt(pycurl.SSL_VERIFYHOST, 2)
        handle.setopt(pycurl.SSLVERSION, pycurl.SSLVERSION_TLSv1_2)
        assert self._ca is not None
        handle.setopt(pycurl.CAINFO, self._ca)
        if self._settings.ca_bundle is not None:
            # Only the configured bundle: no directory of extra trust.
            handle.unsetopt(pycurl.CAPATH)
        handle.setopt(pycurl.TCP_NODELAY, 1)
        handle.setopt(pycurl.TCP_KEEPALIVE, 1)
        handle.setopt(pycurl.MAXAGE_CONN, IDLE_SECONDS)
        return handle
