"""The one exception tree of Callhook. No HTTP here: ``callhook.api.errors`` maps it.

Every message is safe to show to the client that caused it: no secrets, no internals.
"""

from __future__ import annotations


class CallhookError(Exception):
    """Base of every error Callhook raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Client errors -------------------------------------------------------------------------
class InvalidRequest(CallhookError):
    """The request is malformed (bad JSON, wrong shape, bad parameter)."""


class UnknownEvent(InvalidRequest):
    """An event name that is not in the catalog."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Unknown event '{name}'. Use GET /api/v2/webhooks/available "
            "for the list of valid events."
        )
        self.name = name


class PayloadInvalid(CallhookError):
    """A payload that does not match its event's model; ``field`` names where."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLarge(CallhookError):
    """The request body is larger than allowed."""


class HeadersTooLarge(CallhookError):
    """The request's header block (size or number of fields) is larger than allowed."""


class URITooLong(CallhookError):
    """The request target (path and query) is longer than allowed."""


class RequestTimeout(CallhookError):
    """The client did not send its request (head or body) in the time allowed."""


class UnsupportedMediaType(CallhookError):
    """The request body has a content type we do not accept."""


class UnsafeURL(CallhookError):
    """A webhook URL that must not be used: not HTTPS, malformed, or an unsafe address."""


class AuthenticationFailed(CallhookError):
    """Missing, malformed, unknown, expired or revoked credentials."""


class PermissionDenied(CallhookError):
    """Authenticated, but not allowed (missing scope, another account's resource)."""


class NotFound(CallhookError):
    """The resource does not exist (or belongs to another account)."""


class IntegrationNotConfigured(NotFound):
    """The account has no webhook URL yet (spec 002)."""

    def __init__(self) -> None:
        super().__init__(
            "Webhook integration not configured. Set a webhook URL via the dashboard first."
        )


class EndpointNotFound(NotFound):
    """No endpoint with this id in the caller's account (unknown, or another account's: the
    two are not told apart, so ids of other accounts cannot be probed)."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"Endpoint '{endpoint_id}' not found.")
        self.endpoint_id = endpoint_id


class Conflict(CallhookError):
    """The request conflicts with the current state."""


class EndpointLimitReached(Conflict):
    """The account already has ``limit`` endpoints (``Settings.max_endpoints_per_account``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"url: this account already has {limit} endpoints, the most allowed. "
            "Delete one before adding another."
        )
        self.limit = limit
        self.field = "url"


class DuplicateEndpointUrl(Conflict):
    """Another endpoint of the same account already has this URL."""

    def __init__(self, url: str) -> None:
        super().__init__(f"url: another endpoint of this account already uses {url}.")
        self.url = url
        self.field = "url"


class PrimaryEndpointUrl(InvalidRequest):
    """The primary endpoint's URL is spec 002's webhook URL: set in the dashboard or by the
    operator's CLI, not through the API (``field``: ``url``)."""

    def __init__(self) -> None:
        super().__init__(
            "url: the primary endpoint's URL is set in the dashboard, not through the API."
        )
        self.field = "url"


class PrimaryEndpointDelete(Conflict):
    """The primary endpoint (spec 002's webhook setting) cannot be deleted."""

    def __init__(self) -> None:
        super().__init__(
            "The primary endpoint is the account's webhook setting and cannot be deleted; "
            "disable it instead."
        )


class Unavailable(CallhookError):
    """We cannot take the request for now (not the client's fault); ``retry_after`` seconds
    until it is worth trying again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    """The database cannot take work for now; ``cause`` says why (``disk_full``,
    ``unreachable``: ``callhook.store.db.Unavailability``)."""

    def __init__(self, message: str, *, cause: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.cause = cause


class RateLimited(CallhookError):
    """Too many requests; ``retry_after`` seconds until the next one is allowed."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- Operator / configuration errors ------------------------------------------------------
class ConfigurationError(CallhookError):
    """Settings or environment are unusable."""


class InvalidSecret(ConfigurationError, ValueError):
    """A webhook signing secret that must not be used: not text, not ``whsec_`` + base64 when it
    says it is, or key material shorter than ``callhook.signing.MIN_KEY_BYTES`` (16 bytes) in
    either signature scheme. Raised when a verifier, adapter or signer is set up, never per
    request. Also a ``ValueError``: the receiver SDK has always raised one for a bad secret."""


class StoreError(CallhookError):
    """The database failed in a way the caller cannot fix."""


class ConcurrentPublish(StoreError):
    """Another publisher committed the same idempotency key between our look-up and our
    insert; ``Publisher.publish`` retries once and then finds the original event."""


class WorkerFailed(CallhookError):
    """A delivery worker stopped because one of its own tasks (``task``: ``"lease renewer"``,
    ``"results flusher"``, ``"claim loop"``, ``"lane 3"`` …) died with an exception, chained as
    the cause. The worker still drained before raising it: jobs not started were given back,
    attempts under way finished and were recorded where the database allowed; whatever could not
    be is claimed again when its lease runs out. ``callhook worker`` exits non-zero on it."""

    def __init__(self, task: str, cause: BaseException) -> None:
        super().__init__(
            f"delivery worker stopped: its {task} failed ({type(cause).__name__}: {cause})"
        )
        self.task = task
