"""The event catalog: names, payload models, samples, JSON Schema."""

from callhook.events.names import (
    ALL_EVENTS,
    DESCRIPTIONS,
    EVENT_GROUPS,
    SUBSCRIBABLE_EVENTS,
    TEST_EVENT,
    is_known,
)

__all__ = [
    "ALL_EVENTS",
    "DESCRIPTIONS",
    "EVENT_GROUPS",
    "SUBSCRIBABLE_EVENTS",
    "TEST_EVENT",
    "is_known",
]
