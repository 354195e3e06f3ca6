"""Validation of event payloads against the catalog, with errors from :mod:`callhook.errors`."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from callhook.errors import PayloadInvalid, UnknownEvent
from callhook.events.fast import FAST
from callhook.events.models import CALL_EVENTS, MODELS, PBX_ID_FIELD, is_pbx_id

_FIXED_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown field",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}


def model_for(event: str) -> type[BaseModel]:
    """The model of ``event``'s ``data``; raises :class:`UnknownEvent` for unknown names."""
    try:
        return MODELS[event]
    except (KeyError, TypeError):
        raise UnknownEvent(str(event)) from None


def _first_error(prefix: str, exc: ValidationError) -> PayloadInvalid:
    error: ErrorDetails = exc.errors(include_url=False)[0]
    field = prefix + "".join(f".{part}" for part in error["loc"])
    message = _FIXED_MESSAGES.get(error["type"])
    if message is None:
        raw = error["msg"]
        message = raw[:1].lower() + raw[1:]
    return PayloadInvalid(f"{field}: {message}", field=field)


def validate_data(event: str, data: object) -> dict[str, Any]:
    """Validate ``data`` for ``event``; return it as a JSON-ready dict.

    The result is ``model_dump(mode="json", exclude_none=True, by_alias=True)``: timestamps are
    normalised to UTC ``...Z`` strings with milliseconds, absent optional fields are left out.

    Raises :class:`UnknownEvent` for names outside the catalog, and :class:`PayloadInvalid`
    naming the first bad field as ``field="data.<dotted.path>"`` (list items by index) with a
    message such as ``"data.caller: value is not a valid E.164 number"``. Unknown fields are
    rejected.

    Most valid payloads are checked by :mod:`callhook.events.fast` (same result, a fraction of
    the cost); anything it cannot vouch for goes through the pydantic model.
    """
    fast = FAST.get(event) if isinstance(event, str) else None
    if fast is not None:
        # It raises fast.Unsure when it cannot vouch for the data (any other exception would
        # be a fault of the fast path): then pydantic decides, and names the error.
        with contextlib.suppress(Exception):
            return fast(data)
    model = model_for(event)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise _first_error("data", exc) from exc
    return parsed.model_dump(mode="json", exclude_none=True, by_alias=True)


def call_id_of(event: str, pbx_id: str, data: Mapping[str, Any]) -> str | None:
    """The id of the call ``event`` belongs to, or ``None`` for events outside calls.

    ``data`` must already be validated: every call-related event carries ``data["call_id"]``
    (for call start/answer/end it equals ``pbx_id``; for chain-member legs, voicemails,
    transcripts, summaries, ratings and tag updates ``pbx_id`` is that record's own id).
    ``sms`` and ``test`` return ``None``. Raises :class:`UnknownEvent` for unknown names and
    :class:`PayloadInvalid` if a call-related ``data`` lacks a string ``call_id``.
    """
    model_for(event)
    if event not in CALL_EVENTS:
        return None
    call_id = data.get("call_id")
    if not isinstance(call_id, str):
        raise PayloadInvalid("data.call_id: field required", field="data.call_id")
    return call_id


def validate_publish_request(body: object) -> dict[str, Any]:
    """Validate a whole publish request ``{"event", "pbx_id", "data"[, "account_id"]}``.

    Beyond :func:`validate_data`, checks that ``pbx_id`` is the id the catalog prescribes for
    the event (``data.call_id`` for call start/answer/end, ``data.leg_id`` for chain-member
    legs, the record's id for voicemail/tags/speech/summary/rating/sms; free for ``test``), so
    that ``(event, pbx_id)`` identifies one event. Returns the normalised request. Errors name
    ``event``, ``pbx_id``, ``account_id`` or ``data.<path>``.
    """
    if not isinstance(body, Mapping):
        raise PayloadInvalid("body: must be a JSON object", field="body")
    unknown = sorted(str(k) for k in body if k not in {"event", "pbx_id", "account_id", "data"})
    if unknown:
        raise PayloadInvalid(f"{unknown[0]}: unknown field", field=unknown[0])
    for key in ("event", "pbx_id", "data"):
        if key not in body:
            raise PayloadInvalid(f"{key}: field required", field=key)
    event = body["event"]
    if not isinstance(event, str):
        raise PayloadInvalid("event: must be a string", field="event")
    model_for(event)
    out: dict[str, Any] = {"event": event}
    for key in ("pbx_id", "account_id"):
        if key not in body:
            continue
        value = body[key]
        if not isinstance(value, str):
            raise PayloadInvalid(f"{key}: must be a string", field=key)
        if not is_pbx_id(value):
            raise PayloadInvalid(
                f"{key}: value is not a valid id (1-128 letters, digits, '.', '_', ':' or '-')",
                field=key,
            )
        out[key] = value
    out["data"] = validate_data(event, body["data"])
    field = PBX_ID_FIELD.get(event)
    if field is not None and out["data"].get(field) != out["pbx_id"]:
        raise PayloadInvalid(f"pbx_id: must equal data.{field} for {event}", field="pbx_id")
    return {k: out[k] for k in ("event", "pbx_id", "account_id", "data") if k in out}
