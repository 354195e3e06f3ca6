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
    from callhook.store.endpoints import Endpoint, SigningSecret


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    """``{"id", "url", "description", "enabled", "subscribed_events", "retry_policy", "state",
    "primary", "created_at", "updated_at"}``. ``subscribed_events`` is a list in catalog order,
    or null for every event (present and future); ``url`` is null only for a primary endpoint
    not configured yet. Times are RFC 3339 UTC with milliseconds."""
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
        "primary": endpoint.primary,
        "created_at": rfc3339(endpoint.created_at),
        "updated_at": rfc3339(endpoint.updated_at),
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
