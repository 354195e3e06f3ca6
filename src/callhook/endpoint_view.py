"""The one JSON shape of an endpoint and of its signing secrets.

API v2 (``/api/v2/endpoints…``) answers with it and ``callhook endpoints … --json`` prints it,
so the two never drift apart. A field added to :class:`callhook.store.endpoints.Endpoint` is
added here (and to ``callhook.api.v2.models.EndpointOut``, which describes this JSON in the
OpenAPI document and forbids any other field).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from callhook.core.clock import rfc3339

if TYPE_CHECKING:
    from datetime import datetime

    from callhook.store.endpoint_status import Status
    from callhook.store.endpoints import Endpoint, SigningSecret


def _time(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def endpoint_json(endpoint: Endpoint, status: Status | None = None) -> dict[str, Any]:
    """``{"id", "url", "description", "enabled", "subscribed_events", "retry_policy", "state",
    "state_since", "failing_since", "next_probe_at", "disable_at", "slowed_until",
    "rate_limit", "max_in_flight", "replay_on_recovery", "primary", "created_at",
    "updated_at", "ordering", "ordering_bound_seconds", "max_age_call_control_seconds",
    "max_age_bulk_seconds"}``. ``subscribed_events`` is a list in catalog order, or null for
    every event (present and future); ``url`` is null only for a primary endpoint not configured
    yet. The health fields (issue 15) come from ``status``
    (``callhook.store.endpoint_status.statuses``; the defaults of an endpoint that never failed
    nor was limited if None); the last four are issue 14's ordering. Times are RFC 3339 UTC
    with milliseconds, null where they do not apply."""
    if status is None:
        from callhook.store.endpoint_status import Status

        status = Status()
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "subscribed_events": None
        if endpoint.subscribed_events is None
        else list(endpoint.subscribed_events),
        "retry_policy": endpoint.retry_policy.value,
        "state": endpoint.state.value,
        "state_since": _time(status.state_since),
        "failing_since": _time(status.failing_since),
        "next_probe_at": _time(status.next_probe_at),
        "disable_at": _time(status.disable_at),
        "slowed_until": _time(status.slowed_until),
        "rate_limit": status.rate_limit,
        "max_in_flight": status.max_in_flight,
        "replay_on_recovery": status.replay_on_recovery,
        "primary": endpoint.primary,
        "created_at": rfc3339(endpoint.created_at),
        "updated_at": rfc3339(endpoint.updated_at),
        "ordering": endpoint.ordering.value,
        "ordering_bound_seconds": endpoint.ordering_bound_seconds,
        "max_age_call_control_seconds": endpoint.max_age_call_control_seconds,
        "max_age_bulk_seconds": endpoint.max_age_bulk_seconds,
    }


def secrets_json(secrets: Iterable[SigningSecret]) -> dict[str, Any]:
    """``{"secrets": [{"secret": "whsec_…", "expires_at": null}, …]}``, newest first: the
    current secret (``expires_at`` null), then those rotated out and still signing."""
    return {
        "secrets": [
            {
                "secret": s.secret,
                "expires_at": None if s.expires_at is None else rfc3339(s.expires_at),
            }
            # The current one first even when rotated within the clock's resolution.
            for s in sorted(secrets, key=lambda s: s.expires_at is not None)
        ]
    }
