"""Classifying an attempt's outcome. Pure.

Success is any 2xx. Everything else is a failure with a reason class:
``timeout``, ``connect_error``, ``tls_error``, ``http_status``, ``redirect`` (3xx is a failure:
redirects are never followed), ``unsafe_target`` (the address failed the SSRF guard),
``integration_disabled`` (no URL or disabled when the attempt came due), ``no_signing_secret``
(nothing to sign with when the attempt came due: nothing sent), ``window_expired`` (the 24 h
retry window had ended when the attempt came due: nothing sent, the delivery fails),
``internal_error`` (Callhook itself failed while making or recording the attempt; logged, and
retried on the normal schedule), ``expired`` (older than its endpoint's maximum age for its event
group: nothing sent, the delivery's status becomes ``expired``, issue 14).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class DeliveryStatus(StrEnum):
    """A delivery's status: ``pending`` (queued, or between attempts), then ``delivered``,
    ``failed`` or ``expired`` (older than its endpoint's maximum age: not sent). ``waiting``:
    behind an earlier event of its call that has not finished (ordered endpoints, issue 14);
    never claimed, it becomes ``pending`` when its turn comes."""

    WAITING = "waiting"
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


class ErrorClass(StrEnum):
    """Why an attempt failed (see the module docstring)."""

    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    HTTP_STATUS = "http_status"
    REDIRECT = "redirect"
    UNSAFE_TARGET = "unsafe_target"
    INTEGRATION_DISABLED = "integration_disabled"
    NO_SIGNING_SECRET = "no_signing_secret"  # noqa: S105 (a reason, not a secret)
    WINDOW_EXPIRED = "window_expired"
    INTERNAL_ERROR = "internal_error"
    EXPIRED = "expired"


class SkipReason(StrEnum):
    """Why a published event made no delivery at all (decided at publish time)."""

    NO_WEBHOOK_URL = "no_webhook_url"
    INTEGRATION_DISABLED = "integration_disabled"
    NOT_SUBSCRIBED = "not_subscribed"
    #: Set later: every endpoint the event went to was deleted (with its deliveries).
    ENDPOINT_DELETED = "endpoint_deleted"


ERROR_CLASSES: Final = tuple(c.value for c in ErrorClass)
#: Failures that say nothing about the endpoint (nothing was sent, or Callhook failed): left out
#: of endpoint health (latency percentiles, failure streaks).
NOT_THE_ENDPOINT: Final = frozenset(
    {
        ErrorClass.INTEGRATION_DISABLED,
        ErrorClass.NO_SIGNING_SECRET,
        ErrorClass.WINDOW_EXPIRED,
        ErrorClass.INTERNAL_ERROR,
        ErrorClass.EXPIRED,
    }
)

#: Statuses after which retrying the same request cannot help: the receiver said it is gone.
_TERMINAL_STATUSES: Final = frozenset({410})
_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    error_class: str | None = None
    status_code: int | None = None
    message: str | None = None
    #: Whether the retry policy may schedule another attempt.
    retryable: bool = True
    #: Whether a Retry-After header on this response should be honoured.
    honours_retry_after: bool = False


@functools.lru_cache(maxsize=1024)
def from_status(status: int) -> Outcome:
    """The outcome of a complete HTTP response (immutable, so one per status is shared)."""
    if 200 <= status < 300:
        return Outcome(delivered=True, status_code=status)
    if 300 <= status < 400:
        return Outcome(
            delivered=False,
            error_class="redirect",
            status_code=status,
            message=f"HTTP {status}: redirects are not followed",
        )
    return Outcome(
        delivered=False,
        error_class="http_status",
        status_code=status,
        message=f"HTTP {status}",
        retryable=status not in _TERMINAL_STATUSES,
        honours_retry_after=status in _RETRY_AFTER_STATUSES,
    )


def failure(error_class: str, message: str, *, retryable: bool = True) -> Outcome:
    """The outcome of an attempt that got no complete response."""
    if error_class not in ERROR_CLASSES:
        raise ValueError(f"unknown error class {error_class!r}")
    return Outcome(delivered=False, error_class=error_class, message=message, retryable=retryable)
