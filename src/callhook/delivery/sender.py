"""The HTTP edge: POSTs signed deliveries over pooled, pinned libcurl connections.

Security by default: HTTPS only, certificates verified (system bundle, or ``CALLHOOK_CA_BUNDLE``),
redirects never followed, and every connection goes to an address the ``VettingResolver`` has
vetted (the lookup that vets is the one the connection is pinned to, so DNS rebinding has no
window). IP-literal hosts never reach a resolver, so the URL is parsed and vetted again before
each try. The network side lives in ``_transport`` (resolve, pin, POST over libcurl, driven by
pycurl's own ``AsyncCurlMulti`` on the event loop) and ``_head`` (the answer, checked as it
arrives).

Everything the endpoint sends back is untrusted: once a complete, well-formed head has arrived,
the status is the endpoint's answer, and a body that arrives slowly, in pieces, cut short or
never finished only shortens the stored excerpt — it never turns the answer into an error. A
head that is not plain HTTP/1.1 (see ``_head``) is a ``connect_error``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final, NamedTuple

import orjson
import pycurl

from callhook import __version__
from callhook.core import outcome as outcomes
from callhook.core.clock import Clock, monotonic
from callhook.core.urlvet import WebhookURL, parse_webhook_url
from callhook.delivery._transport import Exchange, Transport
from callhook.delivery.resolver import unsafe_target_reason
from callhook.errors import UnsafeURL
from callhook.settings import Settings
from callhook.signing import signature_headers

log = logging.getLogger("callhook.delivery")

USER_AGENT = f"Callhook/{__version__}"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: outcomes.Outcome
    started_at: datetime
    duration_ms: float
    response_body: str | None
    retry_after: str | None
    request_headers: dict[str, str]
    #: Why the stored excerpt is shorter than the body, when the body could not be read in full
    #: (time limit, connection reset, broken chunked encoding); the attempt logs it.
    note: str | None = None


def request_headers(
    *,
    body: bytes,
    event_id: str,
    event: str,
    attempt: int,
    timestamp: int,
    secrets: tuple[str, ...],
) -> dict[str, str]:
    """Every header of one attempt (a fresh timestamp and signature on every attempt)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Event": event,
        "X-Webhook-Attempt": str(attempt),
    }
    headers.update(
        signature_headers(body=body, msg_id=event_id, timestamp=timestamp, secrets=secrets)
    )
    return headers


@lru_cache(maxsize=4096)
def _vetted(url: str, allow_unsafe: bool) -> WebhookURL:
    # Parsing is pure, so a URL vetted once stays vetted; an unsafe one raises every time
    # (exceptions are not cached).
    return parse_webhook_url(url, allow_unsafe=allow_unsafe)


def excerpt(raw: bytes, limit: int) -> str:
    """The stored part of a response body: at most ``limit`` bytes, no NULs (PostgreSQL)."""
    return raw[:limit].decode("utf-8", errors="replace").replace("\x00", "")


#: libcurl's errors that mean the TLS handshake or the certificate failed.
_TLS_ERRORS: Final = frozenset(
    {
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_PEER_FAILED_VERIFICATION,
        pycurl.E_SSL_CERTPROBLEM,
        pycurl.E_SSL_CIPHER,
        pycurl.E_SSL_CACERT_BADFILE,
        pycurl.E_SSL_CRL_BADFILE,
        pycurl.E_SSL_ISSUER_ERROR,
        pycurl.E_SSL_PINNEDPUBKEYNOTMATCH,
        pycurl.E_SSL_INVALIDCERTSTATUS,
        pycurl.E_SSL_SHUTDOWN_FAILED,
        pycurl.E_SSL_ENGINE_NOTFOUND,
        pycurl.E_SSL_ENGINE_SETFAILED,
        pycurl.E_SSL_ENGINE_INITFAILED,
        pycurl.E_USE_SSL_FAILED,
    }
)


class Sender:
    """Sends one attempt at a time per call; safe to share across tasks of one event loop.

    Holds one connection pool (libcurl's multi handle): at most ``worker_max_in_flight``
    connections in all, idle ones kept for reuse; per endpoint as many as it has attempts in
    flight to it (the worker caps that at ``worker_per_endpoint_limit``).
    """

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._transport: Transport | None = None
        self._limit_message = f"no complete response within {settings.delivery_timeout:g} s"

    async def __aenter__(self) -> Sender:
        transport = Transport(self._settings)
        transport.open()
        self._transport = transport
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def send(self, *, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST once and classify; never raises (short of cancellation), whatever the endpoint
        or the network does.

        ``headers`` are sent as given and returned in the result (not copied, not changed).
        """
        transport = self._transport
        assert transport is not None, "use `async with Sender(...)`"
        started_at = self._clock.now()
        t0 = monotonic()
        limit = self._settings.delivery_timeout
        try:
            target = _vetted(url, self._settings.allow_unsafe_targets)
            addresses: tuple[str, ...] = ()
            if target.literal_ip is None:
                fresh = transport.cached(target)
                if fresh is None:
                    async with asyncio.timeout(limit):
                        fresh = await transport.addresses(target)
                addresses = fresh
            exchange = await transport.post(
                target,
                body=body,
                headers=[f"{name}: {value}" for name, value in headers.items()],
                addresses=addresses,
                seconds=limit - (monotonic() - t0),
            )
            return self._result(exchange, started_at, t0, headers)
        except UnsafeURL as exc:
            result = outcomes.failure(outcomes.ErrorClass.UNSAFE_TARGET, exc.message)
        except TimeoutError:
            result = outcomes.failure(outcomes.ErrorClass.TIMEOUT, self._limit_message)
        except OSError as exc:
            reason = unsafe_target_reason(exc)
            if reason is not None:
                result = outcomes.failure(outcomes.ErrorClass.UNSAFE_TARGET, reason)
            else:
                result = outcomes.failure(outcomes.ErrorClass.CONNECT_ERROR, _describe(exc))
        except Exception as exc:
            # Not something the transport is documented to raise: our fault or the client's,
            # never a reason to lose the attempt.
            log.exception("unexpected error while sending")
            result = outcomes.failure(outcomes.ErrorClass.INTERNAL_ERROR, _describe(exc))
        return self._failed(result, started_at, t0, headers)

    def _result(
        self, exchange: Exchange, started_at: datetime, t0: float, headers: dict[str, str]
    ) -> SendResult:
        verdict = classify(exchange, timeout_message=self._limit_message)
        if not verdict.answered:
            return self._failed(verdict.outcome, started_at, t0, headers)
        limit = self._settings.response_body_limit
        return SendResult(
            outcome=verdict.outcome,
            started_at=started_at,
            duration_ms=(monotonic() - t0) * 1000,
            response_body=excerpt(bytes(exchange.answer.body), limit),
            retry_after=exchange.answer.retry_after,
            request_headers=headers,
            note=verdict.note,
        )

    @staticmethod
    def _failed(
        result: outcomes.Outcome, started_at: datetime, t0: float, headers: dict[str, str]
    ) -> SendResult:
        return SendResult(
            outcome=result,
            started_at=started_at,
            duration_ms=(monotonic() - t0) * 1000,
            response_body=None,
            retry_after=None,
            request_headers=headers,
        )


class Verdict(NamedTuple):
    """What one exchange came to: the ``outcome``; whether the endpoint ``answered`` (a complete,
    well-formed head: its status, Retry-After and body excerpt are kept); and a ``note`` when
    the excerpt is shorter than the body for a reason other than the size limit."""

    outcome: outcomes.Outcome
    answered: bool
    note: str | None = None


def classify(exchange: Exchange, *, timeout_message: str) -> Verdict:
    """Map libcurl's result and the answer's state onto ``core/outcome.py``'s classes. Pure.

    A refused head is a ``connect_error``; no complete head is ``timeout`` (libcurl's 28),
    ``tls_error`` (its TLS and certificate codes) or ``connect_error`` (anything else); so is
    chunked framing broken before the first body byte. After a complete head the status
    stands, and an error only shortens the excerpt (noted), except the write error that is our
    own stop at the size limit.
    """
    answer = exchange.answer
    errno = exchange.errno
    if answer.problem is not None:
        return Verdict(
            outcomes.failure(
                outcomes.ErrorClass.CONNECT_ERROR, f"malformed response: {answer.problem}"
            ),
            False,
        )
    unframed = (
        errno == pycurl.E_RECV_ERROR and "chunk" in exchange.message.lower() and not answer.body
    )
    if not answer.complete or answer.status is None or unframed:
        if errno == pycurl.E_OPERATION_TIMEDOUT:
            return Verdict(outcomes.failure(outcomes.ErrorClass.TIMEOUT, timeout_message), False)
        error_class = (
            outcomes.ErrorClass.TLS_ERROR
            if errno in _TLS_ERRORS
            else outcomes.ErrorClass.CONNECT_ERROR
        )
        return Verdict(outcomes.failure(error_class, _curl_error(errno, exchange.message)), False)
    note = None
    if errno == pycurl.E_OPERATION_TIMEDOUT:
        note = "response body not complete within the time limit"
    elif errno and not (errno == pycurl.E_WRITE_ERROR and answer.enough):
        note = f"response body cut short: {_curl_error(errno, exchange.message)}"
    return Verdict(outcomes.from_status(answer.status), True, note)


def _curl_error(errno: int, message: str) -> str:
    return f"curl error {errno}: {message or 'no detail'}"[:500]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def headers_json(headers: dict[str, str]) -> str:
    return orjson.dumps(headers).decode()
