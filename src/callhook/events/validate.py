"""Validation of event payloads against the catalog, with errors from :mod:`callhook.errors`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from callhook.errors import PayloadInvalid, UnknownEvent
from callhook.events.fast import FAST, Unsure
from callhook.events.models import (
    _LINE,
    _PBX_ID,
    CALL_EVENTS,
    MODELS,
    PBX_ID_FIELD,
    PBX_ID_RULE,
    pattern_rule,
)

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
    if error["type"] == "string_pattern_mismatch":
        message = pattern_rule(error.get("ctx", {}).get("pattern"))
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
    the cost); what it cannot vouch for (it raises ``Unsure``) goes through the pydantic model.
    Any other exception from it is a fault of the fast path and propagates: a bug there must
    show (a failing test, a logged 500), not hide as slowness.
    """
    fast = FAST.get(event) if isinstance(event, str) else None
    if fast is not None:
        try:
            return fast(data)
        except Unsure:
            pass  # pydantic decides, and names the error
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


#: The fields of a publish request (docs/events.md, "Publish request").
REQUEST_FIELDS: Final = frozenset({"event", "pbx_id", "account_id", "data", "idempotency_key"})
MAX_IDEMPOTENCY_KEY: Final = 200

#: ``(event, pbx_id, account_id, data, idempotency_key)`` of a valid publish request.
PublishItem = tuple[str, str, str | None, dict[str, Any], str | None]


def _id_error(where: str, name: str, value: object) -> PayloadInvalid:
    field = f"{where}{name}"
    if value is None:
        return PayloadInvalid(f"{field}: field required", field=field)
    if not isinstance(value, str):  # no integer is taken for an id and stored as text
        return PayloadInvalid(f"{field}: must be a string", field=field)
    return PayloadInvalid(f"{field}: {PBX_ID_RULE}", field=field)


def _key_error(where: str, value: object) -> PayloadInvalid:
    field = f"{where}idempotency_key"
    if not isinstance(value, str):
        return PayloadInvalid(f"{field}: must be a string", field=field)
    if not 0 < len(value) <= MAX_IDEMPOTENCY_KEY:
        return PayloadInvalid(
            f"{field}: must be 1 to {MAX_IDEMPOTENCY_KEY} characters", field=field
        )
    return PayloadInvalid(f"{field}: must not contain control characters", field=field)


def validate_publish_item(item: object, *, where: str = "") -> PublishItem:
    """Validate one publish request: the one contract of every publish path.

    HTTP ingest, ``callhook emit``, ``publish.publish_one`` and the simulator all come through
    here (via ``publish.parse_event``). ``item`` is ``{"event", "pbx_id", "data"[,
    "account_id"][, "idempotency_key"]}``; ``where`` prefixes field paths (``events[3].``).

    The rules (docs/events.md, "Publish request"):

    - ``event``: a string naming a catalog event (else :class:`UnknownEvent`);
    - ``pbx_id`` (required) and ``account_id`` (optional; ``null`` is absent): strings matching
      ``PBX_ID_PATTERN`` — 1 to 128 ASCII letters, digits, ``.``, ``_``, ``:`` or ``-``, so no
      NUL, control character or space ever reaches storage, and no number is stringified;
    - ``idempotency_key`` (optional; ``null`` is absent): a string of 1 to 200 characters
      without control characters;
    - ``data`` (required): :func:`validate_data`;
    - ``pbx_id`` equals ``data.<field>`` where the catalog says so (``PBX_ID_FIELD``: the call
      id for call start/answer/end, the leg id for chain-member legs, the record's id for
      voicemail/tags/speech/summary/rating/sms); ``test``'s is free. That keeps
      ``(event, pbx_id)`` the identity receivers deduplicate on.

    Returns ``(event, pbx_id, account_id, data, idempotency_key)`` with ``data`` normalised.
    Raises :class:`PayloadInvalid` naming the first bad field (checked in the order above)
    as ``field=`` and at the start of its message, or :class:`UnknownEvent`.
    """
    if not isinstance(item, dict):
        field = where.rstrip(".") or "body"
        raise PayloadInvalid(f"{field}: must be a JSON object", field=field)
    if not item.keys() <= REQUEST_FIELDS:
        field = f"{where}{sorted(str(k) for k in item if k not in REQUEST_FIELDS)[0]}"
        raise PayloadInvalid(f"{field}: unknown field", field=field)
    event = item.get("event")
    if not isinstance(event, str):
        problem = "field required" if event is None else "must be a string"
        raise PayloadInvalid(f"{where}event: {problem}", field=f"{where}event")
    if event not in MODELS:
        raise UnknownEvent(event)
    pbx_id = item.get("pbx_id")
    if not isinstance(pbx_id, str) or _PBX_ID.fullmatch(pbx_id) is None:
        raise _id_error(where, "pbx_id", pbx_id)
    account_id = item.get("account_id")
    if account_id is not None and (
        not isinstance(account_id, str) or _PBX_ID.fullmatch(account_id) is None
    ):
        raise _id_error(where, "account_id", account_id)
    key = item.get("idempotency_key")
    if key is not None and (
        not isinstance(key, str)
        or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY
        or _LINE.fullmatch(key) is None
    ):
        raise _key_error(where, key)
    if "data" not in item:
        raise PayloadInvalid(f"{where}data: field required", field=f"{where}data")
    try:
        data = validate_data(event, item["data"])
    except PayloadInvalid as exc:
        if not where:
            raise
        field = f"{where}{exc.field}" if exc.field else f"{where}data"
        raise PayloadInvalid(f"{where}{exc.message}", field=field) from exc
    same_as = PBX_ID_FIELD.get(event)
    if same_as is not None and data.get(same_as) != pbx_id:
        raise PayloadInvalid(
            f"{where}pbx_id: must equal data.{same_as} for {event}", field=f"{where}pbx_id"
        )
    return event, pbx_id, account_id, data, key


def validate_publish_request(body: object) -> dict[str, Any]:
    """:func:`validate_publish_item` as a dict: the normalised request, absent keys left out."""
    event, pbx_id, account_id, data, key = validate_publish_item(body)
    out: dict[str, Any] = {"event": event, "pbx_id": pbx_id}
    if account_id is not None:
        out["account_id"] = account_id
    out["data"] = data
    if key is not None:
        out["idempotency_key"] = key
    return out
