"""The HTTP edge: one pooled aiohttp session that POSTs signed deliveries.

Security by default: HTTPS only, certificates verified (system store, or ``CALLHOOK_CA_BUNDLE``),
redirects never followed, and every connection goes to an address the ``VettingResolver`` has
vetted (the same lookup that vets is the one aiohttp connects to, so DNS rebinding has no window).
IP-literal hosts never reach a resolver, so the URL is parsed and vetted again before each try.

Everything the endpoint sends back is untrusted: once a status line has been parsed, the status
is the endpoint's answer, and a body that arrives slowly, in pieces, cut short or never finished
only shortens the stored excerpt (``read_excerpt``) — it never turns the answer into an error.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import aiohttp
import orjson

from callhook import __version__
from callhook.core import outcome as outcomes
from callhook.core.clock import Clock, monotonic
from callhook.core.urlvet import WebhookURL, parse_webhook_url
from callhook.delivery.resolver import VettingResolver, unsafe_target_reason
from callhook.errors import UnsafeURL
from callhook.settings import Settings
from callhook.signing import signature_headers

log = logging.getLogger("callhook.delivery")

USER_AGENT = f"Callhook/{__version__}"
#: How much of a response that has already arrived is drained (without waiting) after the
#: excerpt, so a complete body leaves the connection reusable; only the first
#: ``response_body_limit`` bytes are stored.
_READ_LIMIT = 64 * 1024


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


def build_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verify certificates against the system store, or only the configured CA bundle."""
    if settings.ca_bundle is not None:
        ctx = ssl.create_default_context(cafile=str(settings.ca_bundle))
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


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


async def read_excerpt(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, str | None]:
    """The first ``limit`` bytes of a response body, or all of it if shorter, and a note when
    the body ended early.

    ``content.read(n)`` returns only what is buffered, so one call can return the first 40 bytes
    of a body written in two parts; this reads until ``limit`` bytes or the end of the body.
    The attempt's time limit still applies (aiohttp raises ``TimeoutError`` from the read), so a
    body that drips forever ends the read, not the attempt. Never raises except on
    cancellation: whatever the body does, the status already received stands.
    """
    buf = bytearray()
    try:
        while len(buf) < limit:
            chunk = await content.read(limit - len(buf))
            if not chunk:
                return bytes(buf), None
            buf += chunk
        # Drain what has already arrived, without waiting, so a complete body leaves the
        # connection reusable.
        drained = 0
        while drained < _READ_LIMIT and not content.at_eof():
            chunk = content.read_nowait(_READ_LIMIT - drained)
            if not chunk:
                break
            drained += len(chunk)
    except TimeoutError:
        return bytes(buf), "response body not complete within the time limit"
    except Exception as exc:  # reset, bad chunking, or anything else the body can cause
        return bytes(buf), f"response body cut short: {_describe(exc)}"
    return bytes(buf), None


def excerpt(raw: bytes, limit: int) -> str:
    """The stored part of a response body: at most ``limit`` bytes, no NULs (PostgreSQL)."""
    return raw[:limit].decode("utf-8", errors="replace").replace("\x00", "")


class Sender:
    """Sends one attempt at a time per call; safe to share across tasks of one event loop."""

    def __init__(self, settings: Settings, *, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._resolver: VettingResolver | None = None
        self._timeout = aiohttp.ClientTimeout(total=settings.delivery_timeout)

    async def __aenter__(self) -> Sender:
        self._resolver = VettingResolver(allow_unsafe=self._settings.allow_unsafe_targets)
        connector = aiohttp.TCPConnector(
            limit=max(self._settings.worker_max_in_flight, 1),
            # Per-endpoint fairness is the worker's job (it caps attempts before their
            # timeout starts); here it would only make attempts wait inside the timeout.
            limit_per_host=0,
            keepalive_timeout=60,
            ttl_dns_cache=10,
            ssl=build_ssl_context(self._settings),
            resolver=self._resolver,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            # aiohttp closes only resolvers it created itself.
            await self._resolver.close()
            self._resolver = None

    async def send(self, *, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST once and classify; never raises (short of cancellation), whatever the endpoint
        or the network does.

        ``headers`` are sent as given and returned in the result (not copied, not changed).
        """
        assert self._session is not None, "use `async with Sender(...)`"
        started_at = self._clock.now()
        t0 = monotonic()
        limit = self._settings.response_body_limit
        sent_headers = headers
        try:
            _vetted(url, self._settings.allow_unsafe_targets)
            async with self._session.post(
                url,
                data=body,
                headers=sent_headers,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                result = outcomes.from_status(response.status)
                retry_after = response.headers.get("Retry-After")
                raw, note = await read_excerpt(response.content, limit)
                return SendResult(
                    outcome=result,
                    started_at=started_at,
                    duration_ms=(monotonic() - t0) * 1000,
                    response_body=excerpt(raw, limit),
                    retry_after=retry_after,
                    request_headers=sent_headers,
                    note=note,
                )
        except UnsafeURL as exc:
            result = outcomes.failure(outcomes.ErrorClass.UNSAFE_TARGET, exc.message)
        except TimeoutError:
            result = outcomes.failure(
                outcomes.ErrorClass.TIMEOUT,
                f"no complete response within {self._settings.delivery_timeout:g} s",
            )
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            result = outcomes.failure(outcomes.ErrorClass.TLS_ERROR, _describe(exc))
        except (aiohttp.ClientError, OSError) as exc:
            reason = unsafe_target_reason(exc)
            if reason is not None:
                result = outcomes.failure(outcomes.ErrorClass.UNSAFE_TARGET, reason)
            else:
                result = outcomes.failure(outcomes.ErrorClass.CONNECT_ERROR, _describe(exc))
        except Exception as exc:
            # Not something the HTTP client is documented to raise: our fault or the client's,
            # never a reason to lose the attempt.
            log.exception("unexpected error while sending")
            result = outcomes.failure(outcomes.ErrorClass.INTERNAL_ERROR, _describe(exc))
        return SendResult(
            outcome=result,
            started_at=started_at,
            duration_ms=(monotonic() - t0) * 1000,
            response_body=None,
            retry_after=None,
            request_headers=sent_headers,
        )


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def headers_json(headers: dict[str, str]) -> str:
    return orjson.dumps(headers).decode()
