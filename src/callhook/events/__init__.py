"""The event catalog: names, payload models, samples, JSON Schema.

``MODELS`` maps each of the 15 event names to the pydantic model of its ``data``;
``validate_publish_item`` checks a publish request (every publish path), ``validate_data`` a
payload, ``call_id_of`` says which call an event belongs to,
``sample_*``/``call_scenario``/``sms_exchange`` build realistic valid events and
``json_schema`` describes it all.
"""

from callhook.events.models import CALL_EVENTS, MODELS
from callhook.events.names import (
    ALL_EVENTS,
    DESCRIPTIONS,
    EVENT_GROUPS,
    SUBSCRIBABLE_EVENTS,
    TEST_EVENT,
    is_known,
)
from callhook.events.samples import (
    SCENARIOS,
    ScheduledEvent,
    call_scenario,
    sample_data,
    sample_publish_request,
    sms_exchange,
)
from callhook.events.schema import json_schema
from callhook.events.validate import (
    call_id_of,
    model_for,
    validate_data,
    validate_publish_item,
    validate_publish_request,
)

__all__ = [
    "ALL_EVENTS",
    "CALL_EVENTS",
    "DESCRIPTIONS",
    "EVENT_GROUPS",
    "MODELS",
    "SCENARIOS",
    "SUBSCRIBABLE_EVENTS",
    "TEST_EVENT",
    "ScheduledEvent",
    "call_id_of",
    "call_scenario",
    "is_known",
    "json_schema",
    "model_for",
    "sample_data",
    "sample_publish_request",
    "sms_exchange",
    "validate_data",
    "validate_publish_item",
    "validate_publish_request",
]
