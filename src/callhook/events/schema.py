"""The catalog as one JSON Schema (draft 2020-12) document, generated from the models."""

from __future__ import annotations

from typing import Any, Final

from pydantic.json_schema import models_json_schema

from callhook.core import ids
from callhook.events.models import CALL_EVENTS, MODELS, PBX_ID_PATTERN
from callhook.events.names import DESCRIPTIONS

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_ID = {"type": "string", "pattern": PBX_ID_PATTERN}


def _data_ref(event: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{MODELS[event].__name__}"}


def _publish_request(event: str) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"Publish {event}",
        "properties": {
            "event": {"const": event},
            "pbx_id": {**_ID, "description": "The PBX's id of this event's subject."},
            "account_id": {**_ID, "description": "The account (only for operator tokens)."},
            "data": _data_ref(event),
        },
        "required": ["event", "pbx_id", "data"],
        "additionalProperties": False,
    }


def _delivery_body(event: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": ids.id_pattern("evt"), "description": "Event id."},
        "event": {"const": event},
        "pbx_id": {**_ID, "description": "Deduplicate on (event, pbx_id)."},
        "account_id": {"type": "string", "description": "The account the event belongs to."},
        "created_at": {
            "type": "string",
            "format": "date-time",
            "description": "When Callhook accepted the event (RFC 3339 UTC, milliseconds).",
        },
    }
    required = ["id", "event", "pbx_id", "account_id", "created_at", "data"]
    if event in CALL_EVENTS:
        properties["call_id"] = {**_ID, "description": "The call; equals data.call_id."}
        properties["sequence"] = {
            "type": "integer",
            "minimum": 1,
            "description": "1, 2, 3... per call, in publish order.",
        }
        required[5:5] = ["call_id", "sequence"]
    properties["data"] = _data_ref(event)
    return {
        "type": "object",
        "title": f"Delivery of {event}",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """One document describing the whole catalog.

    - ``events.<name>``: description, ``call_related`` and ``data`` (a ``$ref`` into ``$defs``);
    - ``publish_request``: what a PBX posts to ingest (``oneOf`` per event);
    - ``delivery_body``: what Callhook POSTs to a customer's URL (``oneOf`` per event);
    - ``$defs``: the models, named after their classes.

    Validation-mode schemas: optional fields may be absent or ``null``; Callhook omits absent
    ones when delivering.
    """
    _, defs = models_json_schema(
        [(model, "validation") for model in MODELS.values()],
        ref_template="#/$defs/{model}",
    )
    events = {
        name: {
            "description": DESCRIPTIONS[name],
            "call_related": name in CALL_EVENTS,
            "data": _data_ref(name),
        }
        for name in MODELS
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Callhook events",
        "description": "Event payloads, publish requests and webhook delivery bodies.",
        "events": events,
        "publish_request": {"oneOf": [_publish_request(name) for name in MODELS]},
        "delivery_body": {"oneOf": [_delivery_body(name) for name in MODELS]},
        "$defs": defs.get("$defs", {}),
    }
