"""What a customer may set on an endpoint, checked before anything is written.

Pure: each function returns the value as stored or raises the domain error that names the field
(``UnknownEvent``, ``InvalidRequest``, ``PayloadInvalid``), which ``callhook.api.errors`` maps to
a 4xx in the envelope. ``callhook.store.endpoints`` calls them from ``create`` and ``update``, the
API, CLI and dashboard through those.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from callhook.core import ordering as ordering_rules
from callhook.core.retry import RetryPolicy
from callhook.errors import InvalidRequest, PayloadInvalid, UnknownEvent
from callhook.events.names import SUBSCRIBABLE_EVENTS

#: Longest description, in characters.
MAX_DESCRIPTION = 500
#: A field not given (``update`` changes only what it is given; None may be a value).
UNSET: Any = object()


def catalog_order(events: Iterable[str]) -> tuple[str, ...]:
    """``events`` without duplicates, in the catalog's order (unknown names dropped)."""
    wanted = set(events)
    return tuple(e for e in SUBSCRIBABLE_EVENTS if e in wanted)


def checked_events(events: Iterable[str], *, field: str = "subscribed_events") -> list[str]:
    """The distinct names of ``events``, all subscribable; else ``UnknownEvent`` (400) naming
    ``field`` and the first unknown name. Checked before anything is written."""
    names = list(dict.fromkeys(events))
    for name in names:
        if name not in SUBSCRIBABLE_EVENTS:
            error = UnknownEvent(name)
            error.message = f"{field}: {error.message}"
            raise error
    return names


def policy(value: str) -> RetryPolicy:
    """``value`` as a retry policy; ``InvalidRequest`` naming ``retry_policy`` otherwise."""
    try:
        return RetryPolicy(value)
    except ValueError:
        raise InvalidRequest(
            f"retry_policy: must be one of {', '.join(p.value for p in RetryPolicy)}"
        ) from None


def description(value: str) -> str:
    """``value`` if it fits ``MAX_DESCRIPTION``; ``PayloadInvalid`` naming ``description``
    otherwise."""
    if len(value) > MAX_DESCRIPTION:
        raise PayloadInvalid(
            f"description: at most {MAX_DESCRIPTION} characters", field="description"
        )
    return value


#: The endpoint fields of ordered delivery (issue 14), as the API and CLI name them.
ORDERING_FIELDS = (
    "ordering",
    "ordering_bound_seconds",
    "max_age_call_control_seconds",
    "max_age_bulk_seconds",
)


def ordering_values(**given: object) -> dict[str, Any]:
    """The ordering columns among ``given`` (``UNSET`` ones left out), checked: ``ordering``
    ``per_call``/``none``; ``ordering_bound_seconds`` whole seconds in [1, 86400];
    ``max_age_*_seconds`` the same or None. ``PayloadInvalid`` names the field otherwise."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is UNSET:
            continue
        if name not in ORDERING_FIELDS:
            raise TypeError(f"unexpected endpoint field {name!r}")
        if name == "ordering":
            values[name] = ordering_rules.parse_ordering(value).value
        else:
            values[name] = ordering_rules.parse_seconds(
                value, field_name=name, optional=name.startswith("max_age_")
            )
    return values
