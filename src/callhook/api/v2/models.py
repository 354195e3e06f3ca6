"""Pydantic models of API v2's requests and responses, for the OpenAPI document.

Handlers build their JSON with ``callhook.api.envelope`` (the one envelope of spec 002); these
models describe exactly that JSON (``extra="forbid"``: no undocumented field), so the OpenAPI
document can be checked against real responses (the schemathesis tests do).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from callhook.core import times
from callhook.core.urlvet import MAX_URL_LENGTH
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.store.endpoints import MAX_DESCRIPTION

#: RFC 3339 UTC to the second, with a ``Z`` (the envelope's ``timestamp``).
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
#: RFC 3339 UTC with milliseconds and a ``Z`` (times inside ``data``).
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

DeliveryStatus = Literal["pending", "waiting", "delivered", "failed", "expired"]
#: The deliveries filter: a status, or ``retrying`` (pending with at least one attempt made).
DeliveryFilter = Literal["pending", "retrying", "waiting", "delivered", "failed", "expired"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Envelope(_Model):
    status: int = Field(description="The HTTP status code, repeated.")
    request_id: str = Field(description="Unique per request; also the X-Request-Id header.")
    timestamp: str = Field(
        pattern=TIMESTAMP_PATTERN, description="When the response was made (RFC 3339, UTC)."
    )


class ErrorResponse(_Model):
    """Every error: ``{"status", "errors", "request_id", "timestamp", "path"}``."""

    status: int
    errors: list[str] = Field(min_length=1, description="Human-readable messages.")
    request_id: str
    timestamp: str = Field(pattern=TIMESTAMP_PATTERN)
    path: str = Field(description="The request path.")


# --- Subscriptions (spec 002) ------------------------------------------------------------------
class EventName(_Model):
    event: str = Field(examples=["incoming_call_start"])


class EventListResponse(_Envelope):
    data: list[EventName]


class WebhookSetting(_Model):
    webhook_url: str = Field(description="Your configured webhook endpoint URL.")
    enabled: bool = Field(description="Whether the webhook integration is active.")
    subscribed_events: list[str] = Field(description="Currently enabled event names.")


class WebhookSettingResponse(_Envelope):
    data: WebhookSetting


# --- Deliveries --------------------------------------------------------------------------------
class DeliverySummary(_Model):
    id: str = Field(description="Delivery id (dlv_…): one event to one of your endpoints.")
    event_id: str = Field(description="Event id (evt_…), the webhook-id header you received.")
    endpoint_id: str = Field(description="The endpoint (ep_…) this delivery goes to.")
    event: str
    pbx_id: str
    status: DeliveryStatus
    attempts: int = Field(ge=0, description="HTTP attempts made so far.")
    created_at: str = Field(pattern=TIME_PATTERN)
    next_attempt_at: str | None = Field(pattern=TIME_PATTERN)
    last_attempt_at: str | None = Field(pattern=TIME_PATTERN)
    last_status_code: int | None
    last_error_class: str | None
    last_latency_ms: float | None
    delivered_at: str | None = Field(pattern=TIME_PATTERN)


class Attempt(_Model):
    number: int = Field(ge=1)
    started_at: str = Field(pattern=TIME_PATTERN)
    duration_ms: float
    status_code: int | None = Field(description="Your endpoint's status, None if none came.")
    response_body: str | None = Field(description="The start of your endpoint's response.")
    error_class: str | None
    error_message: str | None
    request_headers: dict[str, str] | None = Field(description="The headers we sent.")


class DeliveryDetail(DeliverySummary):
    request_body: dict[str, Any] = Field(description="The JSON body every attempt sends.")
    attempt_log: list[Attempt] = Field(description="Every attempt, oldest first.")


class DeliveryPage(_Model):
    deliveries: list[DeliverySummary] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )


class DeliveryPageResponse(_Envelope):
    data: DeliveryPage


class DeliveryResponse(_Envelope):
    data: DeliverySummary


class DeliveryDetailResponse(_Envelope):
    data: DeliveryDetail


def _request_time(value: object) -> datetime:
    # The one reading of times at the API (``core.times``): RFC 3339 with a time zone, in the
    # accepted range, as UTC; pydantic's own datetime would also take Unix times (``0``).
    try:
        return times.parse_rfc3339(value)
    except times.TimeInvalid as exc:
        raise PydanticCustomError("time", str(exc)) from None


#: A time in a request body: RFC 3339 with a time zone, 1970 to 9999 in UTC.
RequestTime = Annotated[
    datetime,
    BeforeValidator(_request_time),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": times.RFC3339_PATTERN}),
]


class RedeliverWindow(_Model):
    """Body of ``POST /api/v2/webhooks/deliveries/redeliver``."""

    since: RequestTime = Field(
        description="Start of the window (inclusive), RFC 3339 with a time zone, "
        f"{times.RANGE_TEXT}."
    )
    until: RequestTime | None = Field(
        default=None,
        description="End of the window (exclusive), RFC 3339 with a time zone, in the same "
        "range; default now.",
    )
    status: Literal["failed", "delivered", "expired"] = Field(
        default="failed", description="Which finished deliveries to send again."
    )
    endpoint_id: str | None = Field(
        default=None,
        max_length=64,
        description="Only deliveries to this endpoint (ep_…) of your account (another id is "
        "answered with 404); default every endpoint.",
    )


class RedeliverCount(_Model):
    queued: int = Field(ge=0, description="How many deliveries were queued again.")


class RedeliverCountResponse(_Envelope):
    data: RedeliverCount


class QueuedTest(_Model):
    delivery_id: str = Field(description="Follow it with GET /api/v2/webhooks/deliveries/{id}.")
    event_id: str
    event: Literal["test"]


class QueuedTestResponse(_Envelope):
    data: QueuedTest


# --- Events of one call ------------------------------------------------------------------------
class EventDeliveryBrief(_Model):
    id: str = Field(description="Delivery id (dlv_…): GET /api/v2/webhooks/deliveries/{id}.")
    endpoint_id: str
    status: DeliveryFilter = Field(
        description="As the delivery stands now; retrying: pending, attempted before "
        "(the deliveries list says pending and shows its attempts).",
    )


class StoredEvent(_Model):
    id: str = Field(description="Event id (evt_…), the webhook-id header.")
    event: str
    pbx_id: str
    call_id: str | None = Field(description="The call this event belongs to, if any.")
    sequence: int | None = Field(description="1, 2, 3… within the call, in publish order.")
    created_at: str = Field(pattern=TIME_PATTERN)
    delivered_to_you: bool = Field(
        description="True when one of its deliveries, as they stand now, was answered 2xx "
        "by your endpoint; false while they are queued, retrying or being redelivered, when "
        "they failed or expired unsent, and when none was made (skip_reason says why). "
        "Changed 2026-12-01: it was true whenever a delivery had been made."
    )
    skip_reason: str | None = Field(description="Why no delivery was made, if none was.")
    deliveries: list[EventDeliveryBrief] = Field(
        description="Its deliveries, one per endpoint it went to, with their status."
    )
    body: dict[str, Any] = Field(description="The JSON body of the webhook.")


class StoredEventListResponse(_Envelope):
    data: list[StoredEvent]


# --- Endpoints ---------------------------------------------------------------------------------
# Request and response models share these field definitions: a new endpoint field is one
# annotated type here, a line in each model, and a key in ``callhook.endpoint_view``.
class _Request(BaseModel):
    # Strict: JSON types are taken as they come (``"true"`` is not a boolean, ``1`` not a string).
    model_config = ConfigDict(extra="forbid", strict=True)


EndpointUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="HTTPS URL of the endpoint; vetted like the webhook URL (public addresses "
        "only, no credentials in it). Unique within your account.",
        examples=["https://crm.example.com/hooks/callhook"],
    ),
]
EndpointDescription = Annotated[
    str,
    Field(
        max_length=MAX_DESCRIPTION,
        description="A note for people (what the endpoint is for).",
        examples=["CRM"],
    ),
]
SubscribableEvent = Annotated[
    str,
    Field(
        max_length=64,
        # Documented, not enforced by the model: an unknown name gets a 400 naming it.
        json_schema_extra={"enum": list(SUBSCRIBABLE_EVENTS)},
    ),
]
SubscribedEvents = Annotated[
    list[SubscribableEvent] | None,
    Field(
        max_length=len(SUBSCRIBABLE_EVENTS) * 2,
        description="Event names from GET /api/v2/webhooks/available, or null for every "
        "event (present and future). Duplicates are ignored.",
        examples=[["incoming_call_end", "outgoing_call_end"]],
    ),
]
RetryPolicyName = Annotated[
    Literal["exponential", "none"],  # callhook.core.retry.RETRY_POLICIES (a test checks)
    Field(description="`exponential`: retry failed deliveries for 24 h; `none`: one attempt."),
]

OrderingName = Annotated[
    Literal["per_call", "none"],  # callhook.core.ordering.Ordering
    Field(
        description="`per_call` (default): a call's events are sent one after another, each "
        "once the previous one finished (docs/receiving.md §4); `none`: as soon as possible."
    ),
]
BoundSeconds = Annotated[
    int,
    Field(
        ge=1,
        le=86_400,
        description="Head-of-line bound: after this many seconds of an event not finishing, "
        "the call's later events are released, marked with X-Webhook-Previous-Sequence.",
    ),
]
MaxAgeSeconds = Annotated[
    int | None,
    Field(
        ge=1,
        le=86_400,
        description="Events of this group older than this many seconds are not sent: their "
        "delivery is `expired`. null: never.",
    ),
]


RateLimit = Annotated[
    float | None,
    Field(
        ge=0.01,  # callhook.core.throttle.MIN_RATE_LIMIT
        # The default cap, documented; the operator's setting is what is enforced (422).
        json_schema_extra={"maximum": 1000},
        description="Deliveries per second at most (across every worker), null for no limit; "
        "from 0.01 to the operator's cap (CALLHOOK_ENDPOINT_RATE_LIMIT_CAP, default "
        "1000).",
        examples=[50],
    ),
]
MaxInFlight = Annotated[
    int | None,
    Field(
        ge=1,
        json_schema_extra={"maximum": 64},
        description="Attempts under way at once at most (across every worker), null for the "
        "worker's default; from 1 to the operator's cap (CALLHOOK_ENDPOINT_MAX_IN_FLIGHT_CAP, "
        "default 64).",
        examples=[8],
    ),
]
ReplayOnRecovery = Annotated[
    bool,
    Field(
        description="When the endpoint recovers from `failing`, queue again, in order, the "
        "deliveries that failed for good during the outage (bounded by age and count)."
    ),
]
EndpointStateName = Annotated[
    Literal["active", "paused", "failing", "disabled"],  # core.health.EndpointState (tested)
    Field(
        description="`active`: delivering; `paused`: events wait, in order, until resumed; "
        "`failing`: the endpoint keeps failing, one probe at `next_probe_at` at a time; "
        "`disabled`: events are recorded as not delivered (by hand, or after failing until "
        "`disable_at`)."
    ),
]


class EndpointOut(_Model):
    """An endpoint as the API shows it (``callhook.endpoint_view.endpoint_json``)."""

    id: str = Field(description="Endpoint id (ep_…).")
    url: str | None = Field(
        description="HTTPS URL; null only for a primary endpoint not configured yet."
    )
    description: str
    enabled: bool = Field(description="False: events are recorded but not delivered here.")
    subscribed_events: list[str] | None = Field(
        description="Subscribed event names in catalog order; null for every event."
    )
    retry_policy: RetryPolicyName
    state: EndpointStateName
    state_since: str | None = Field(
        pattern=TIME_PATTERN, description="When the state began; null if it never changed."
    )
    failing_since: str | None = Field(
        pattern=TIME_PATTERN, description="While failing: the first failure of the streak."
    )
    next_probe_at: str | None = Field(
        pattern=TIME_PATTERN, description="While failing: when the next probe may be sent."
    )
    disable_at: str | None = Field(
        pattern=TIME_PATTERN,
        description="While failing: when it will be disabled unless it recovers (null: never).",
    )
    slowed_until: str | None = Field(
        pattern=TIME_PATTERN,
        description="A 429 or 503 with Retry-After holds the whole endpoint until then.",
    )
    rate_limit: RateLimit
    max_in_flight: MaxInFlight
    replay_on_recovery: ReplayOnRecovery
    primary: bool = Field(
        description="The account's webhook setting of spec 002 (`/api/v2/webhooks`). Its URL "
        "is set in the dashboard; it cannot be deleted."
    )
    created_at: str = Field(pattern=TIME_PATTERN)
    updated_at: str = Field(pattern=TIME_PATTERN)
    ordering: OrderingName
    ordering_bound_seconds: BoundSeconds
    max_age_call_control_seconds: MaxAgeSeconds = Field(
        description="Call start, dial-chain member, answer and end events."
    )
    max_age_bulk_seconds: MaxAgeSeconds = Field(
        description="Speech, summary, tags, rating, voicemail and sms events."
    )


class EndpointResponse(_Envelope):
    data: EndpointOut


class EndpointListResponse(_Envelope):
    data: list[EndpointOut] = Field(description="The primary endpoint first, then oldest first.")


class EndpointCreate(_Request):
    """Body of ``POST /api/v2/endpoints``."""

    url: EndpointUrl
    subscribed_events: SubscribedEvents
    description: EndpointDescription = ""
    retry_policy: RetryPolicyName = "exponential"
    enabled: bool = Field(default=True, description="Deliver to it from now on.")
    rate_limit: RateLimit = None
    max_in_flight: MaxInFlight = None
    replay_on_recovery: ReplayOnRecovery = True
    ordering: OrderingName = "per_call"
    ordering_bound_seconds: BoundSeconds = 300
    max_age_call_control_seconds: MaxAgeSeconds = None
    max_age_bulk_seconds: MaxAgeSeconds = None


class EndpointUpdate(_Request):
    """Body of ``PATCH /api/v2/endpoints/{endpoint_id}``: only the fields given change (a
    field given as null is refused, but for ``subscribed_events``: null is every event)."""

    # Defaults are not validated: absent means "unchanged" (handlers read ``model_fields_set``),
    # while an explicit null fails the field's type; hence the None defaults of typed fields.
    url: EndpointUrl = Field(  # type: ignore[assignment]
        default=None, description="A new URL (not for the primary endpoint: the dashboard's)."
    )
    subscribed_events: SubscribedEvents = None
    description: EndpointDescription = None  # type: ignore[assignment]
    retry_policy: RetryPolicyName = None  # type: ignore[assignment]
    enabled: bool = Field(  # type: ignore[assignment]
        default=None, description="False: stop delivering here."
    )
    rate_limit: RateLimit = None
    max_in_flight: MaxInFlight = None
    replay_on_recovery: ReplayOnRecovery = None  # type: ignore[assignment]
    ordering: OrderingName = None  # type: ignore[assignment]
    ordering_bound_seconds: BoundSeconds = None  # type: ignore[assignment]
    max_age_call_control_seconds: MaxAgeSeconds = None
    max_age_bulk_seconds: MaxAgeSeconds = None


class EndpointDeleted(_Model):
    id: str
    deleted: Literal[True]
    deliveries_deleted: int = Field(
        ge=0, description="How many of its deliveries went with it (with their attempts)."
    )


class EndpointDeletedResponse(_Envelope):
    data: EndpointDeleted


class SigningSecretOut(_Model):
    secret: str = Field(description="`whsec_…`: verify the webhook-signature header with it.")
    expires_at: str | None = Field(
        pattern=TIME_PATTERN,
        description="null for the current secret; when a rotated-out secret stops signing.",
    )


class EndpointSecrets(_Model):
    secrets: list[SigningSecretOut] = Field(
        description="Every secret signing now, the current one first."
    )


class EndpointSecretsResponse(_Envelope):
    data: EndpointSecrets
