"""Pydantic models of each event's ``data`` object: the payload contract of the catalog.

Every model forbids unknown fields and validates strictly (no ``"3"`` for ``3``, no ``true`` for a
number, no infinite or NaN floats), except timestamps, which arrive as RFC 3339 strings.
Timestamps must carry a time zone and lie in the accepted range (1970 to 9999 in UTC,
:mod:`callhook.core.times`); they are normalised to UTC and serialised
(``model_dump(mode="json")``) as ``2026-01-15T10:30:00.123Z``. Phone numbers are E.164 (``+``
then 7 to 15 ASCII digits).

Ids (``call_id``, ``leg_id``, record ids) are the PBX's own opaque ids: 1 to 128 letters, digits,
``.``, ``_``, ``:`` or ``-``, the first a letter or digit. Other text never holds a control
character (U+0000–U+001F, U+007F–U+009F) or an unpaired surrogate (which UTF-8, and so storage,
cannot hold); only multi-line text (``TextBlock``: transcriptions, summaries, SMS bodies…) may
hold tab, line feed and carriage return.

No I/O here; :mod:`callhook.events.validate` turns validation errors into Callhook errors.

:mod:`callhook.events.fast` generates a faster check from these models and calls their
validators as they are, so a validator here reads only ``info.data`` (never nested models in
it) and returns its input unchanged or raises ``PydanticCustomError``. A constraint, type or
option that ``fast`` does not know keeps that model on pydantic alone (a test says which).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from callhook.core import times
from callhook.core.clock import rfc3339
from callhook.events import names

E164_PATTERN: Final = r"^\+[1-9][0-9]{6,14}$"
PBX_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
#: Longest ``https://`` URL accepted (presigned URLs with session tokens run past 2,000).
MAX_URL_LENGTH: Final = 4096
_E164 = re.compile(E164_PATTERN)
_PBX_ID = re.compile(PBX_ID_PATTERN)
# Text as a whole: no control character, no unpaired surrogate; multi-line text may hold tab,
# line feed and carriage return.
_LINE = re.compile("[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*")
_BLOCK = re.compile("[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]*")


# --- Field types ---------------------------------------------------------------------------
def _check_e164(value: str) -> str:
    if not _E164.fullmatch(value):
        raise PydanticCustomError("e164", "value is not a valid E.164 number")
    return value


def is_pbx_id(value: str) -> bool:
    """Whether ``value`` is a well-formed PBX id (also used for ``account_id``)."""
    return _PBX_ID.fullmatch(value) is not None


#: What ``PBX_ID_PATTERN`` says, in words: every refusal of an id gives this, never the regex.
PBX_ID_WORDS: Final = "1-128 letters, digits, '.', '_', ':' or '-', the first a letter or digit"
PBX_ID_RULE: Final = f"value is not a valid id ({PBX_ID_WORDS})"


def _check_pbx_id(value: str) -> str:
    if not is_pbx_id(value):
        raise PydanticCustomError("pbx_id", PBX_ID_RULE)
    return value


def _check_line(value: str) -> str:
    if _LINE.fullmatch(value) is None:
        raise PydanticCustomError("control_character", "value must not contain control characters")
    return value


def _check_block(value: str) -> str:
    if _BLOCK.fullmatch(value) is None:
        raise PydanticCustomError(
            "control_character",
            "value must not contain control characters other than tab and line breaks",
        )
    return value


def _check_https_url(value: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or _LINE.fullmatch(value) is None
        or any(c.isspace() for c in value)
    ):
        raise PydanticCustomError("https_url", "value is not a valid https:// URL")
    return value


def _check_rfc3339(value: object) -> object:
    # Pydantic alone would also take Unix timestamps and date-only strings; the wire format is
    # RFC 3339 with an explicit offset, so anything else is refused before parsing.
    if isinstance(value, datetime) or (isinstance(value, str) and times.RFC3339.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "rfc3339", "value is not an RFC 3339 timestamp with a time zone (e.g. 2026-01-15T10:30:00Z)"
    )


def _to_utc(value: datetime) -> datetime:
    # The accepted range is checked here, once the value is parsed: converting it to UTC is what
    # overflows (``0001-01-01T00:00:00+01:00``), and a value outside it gets a clean error.
    try:
        return times.in_range(value)
    except times.TimeInvalid as exc:
        raise PydanticCustomError("time_range", f"value {exc}") from None


E164 = Annotated[
    str,
    AfterValidator(_check_e164),
    WithJsonSchema({"type": "string", "pattern": E164_PATTERN, "examples": ["+14155550123"]}),
]
PbxId = Annotated[
    str,
    AfterValidator(_check_pbx_id),
    WithJsonSchema({"type": "string", "pattern": PBX_ID_PATTERN}),
]
HttpsUrl = Annotated[
    str,
    Field(max_length=MAX_URL_LENGTH),
    AfterValidator(_check_https_url),
    WithJsonSchema(
        {"type": "string", "format": "uri", "pattern": "^https://", "maxLength": MAX_URL_LENGTH}
    ),
]
Timestamp = Annotated[
    AwareDatetime,
    Strict(False),
    BeforeValidator(_check_rfc3339),
    AfterValidator(_to_utc),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]
Direction = Literal["inbound", "outbound"]
Disposition = Literal["answered", "missed", "busy", "failed", "voicemail"]
#: JSON Schema patterns of the two kinds of text (documentation; the checks are above).
LINE_PATTERN: Final = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
BLOCK_PATTERN: Final = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


_BLOCK_SCHEMA = {"pattern": BLOCK_PATTERN}
_LINE_SCHEMA = {"pattern": LINE_PATTERN}
#: Text that may span lines (tab, line feed, carriage return), 1 to 10,000 characters.
TextBlock = Annotated[
    str,
    Field(min_length=1, max_length=10_000, json_schema_extra=_BLOCK_SCHEMA),
    AfterValidator(_check_block),
]
SmsText = Annotated[
    str,
    Field(min_length=1, max_length=1600, json_schema_extra=_BLOCK_SCHEMA),
    AfterValidator(_check_block),
]
Message = Annotated[
    str,
    Field(min_length=1, max_length=500, json_schema_extra=_BLOCK_SCHEMA),
    AfterValidator(_check_block),
]
#: One line of text: a name (1 to 120 characters) or a tag (1 to 64).
Name = Annotated[
    str,
    Field(min_length=1, max_length=120, json_schema_extra=_LINE_SCHEMA),
    AfterValidator(_check_line),
]
Tag = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra=_LINE_SCHEMA),
    AfterValidator(_check_line),
]
DIGITS_PATTERN: Final = r"^[0-9]{2,8}$"
Digits = Annotated[str, Field(pattern=DIGITS_PATTERN)]
LANGUAGE_PATTERN: Final = r"^[a-z]{2,3}(-[A-Z]{2})?$"

#: Every pattern a request's value is declared with (here and in ``callhook.api``), in words:
#: pydantic's own message for a value that does not match quotes the regular expression.
PATTERN_RULES: Final = {
    PBX_ID_PATTERN: PBX_ID_RULE,
    DIGITS_PATTERN: "value must be 2 to 8 digits",
    LANGUAGE_PATTERN: "value must be a language tag such as en or en-US",
}


def pattern_rule(pattern: object) -> str:
    """What a value refused for not matching ``pattern`` (pydantic's ``ctx["pattern"]``) must
    be, in words; never the regular expression itself."""
    return PATTERN_RULES.get(str(pattern), "value has a character or a form not allowed here")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# --- Shared parts --------------------------------------------------------------------------
class UserRef(_Model):
    """A PBX user: a dial-chain member, the agent who dialled, who answered or tagged."""

    extension: Digits = Field(description="Internal extension number.")
    user_id: PbxId = Field(description="The user's id at the PBX.")
    user_name: Name = Field(description="The user's display name.")


class _CallData(_Model):
    call_id: PbxId = Field(description="The call's id at the PBX; the same on all its events.")


class _CallLeg(_CallData):
    direction: Direction = Field(description="`inbound` or `outbound`.")
    caller: E164 = Field(description="Who placed the call (E.164).")
    callee: E164 = Field(description="Who was called (E.164).")
    did: E164 = Field(
        description="The account's number (DID/line) the call came in on or went out from."
    )
    line: Name | None = Field(
        default=None, description="Name of the line or number group, e.g. `Sales`."
    )
    started_at: Timestamp = Field(description="When the call started ringing.")


class _IncomingLeg(_CallLeg):
    direction: Literal["inbound"] = Field(description="Always `inbound`.")


class _OutgoingLeg(_CallLeg):
    direction: Literal["outbound"] = Field(description="Always `outbound`.")
    user: UserRef = Field(description="The user who placed the call.")


def _not_before_start(value: datetime | None, info: ValidationInfo) -> datetime | None:
    started = info.data.get("started_at")
    if value is not None and isinstance(started, datetime) and value < started:
        raise PydanticCustomError("before_start", "value is earlier than started_at")
    return value


def _answered_needs_time(value: str, info: ValidationInfo) -> str:
    # A missing key means answered_at itself was invalid; that error is already reported.
    if value == "answered" and "answered_at" in info.data and info.data["answered_at"] is None:
        raise PydanticCustomError("needs_answered_at", "an answered call needs answered_at")
    return value


# --- Incoming calls ------------------------------------------------------------------------
class IncomingCallStart(_IncomingLeg):
    """An incoming call reached the PBX."""

    caller_name: Name | None = Field(default=None, description="Caller name (CNAM), if known.")


class IncomingCallStartChainMemberCall(_IncomingLeg):
    """One dial-chain member's phone starts ringing for an incoming call."""

    leg_id: PbxId = Field(description="This member's call leg; also the event's `pbx_id`.")
    member: UserRef = Field(description="The dial-chain member being rung.")
    position: int = Field(ge=1, le=1000, description="The member's step in the dial chain (1…).")
    ringing_at: Timestamp = Field(description="When this member started ringing.")

    _check_ringing = field_validator("ringing_at")(_not_before_start)


class IncomingCallEndChainMemberCall(_IncomingLeg):
    """One dial-chain member's leg ended (answered and hung up, or not answered)."""

    leg_id: PbxId = Field(description="This member's call leg; also the event's `pbx_id`.")
    member: UserRef = Field(description="The dial-chain member.")
    position: int = Field(ge=1, le=1000, description="The member's step in the dial chain (1…).")
    ringing_at: Timestamp = Field(description="When this member started ringing.")
    ended_at: Timestamp = Field(description="When this member's leg ended.")
    ring_duration: Seconds = Field(description="Seconds this member's phone rang.")
    talk_duration: Seconds = Field(description="Seconds this member talked (0 if unanswered).")
    disposition: Disposition = Field(description="How this member's leg ended.")

    _check_times = field_validator("ringing_at", "ended_at")(_not_before_start)


class IncomingCallAnswer(_IncomingLeg):
    """An incoming call was answered by a dial-chain member."""

    answered_at: Timestamp = Field(description="When the call was answered.")
    ring_duration: Seconds = Field(description="Seconds from start to answer.")
    leg_id: PbxId = Field(description="The answering member's leg.")
    answered_by: UserRef = Field(description="The member who answered.")

    _check_answered = field_validator("answered_at")(_not_before_start)


class IncomingCallEnd(_IncomingLeg):
    """An incoming call ended; ``disposition`` says how."""

    answered_at: Timestamp | None = Field(default=None, description="When answered, if it was.")
    ended_at: Timestamp = Field(description="When the call ended.")
    ring_duration: Seconds = Field(description="Seconds the call rang before answer or hangup.")
    talk_duration: Seconds = Field(description="Seconds of conversation (0 if unanswered).")
    disposition: Disposition = Field(description="How the call ended.")
    answered_by: UserRef | None = Field(default=None, description="Who answered, if anyone.")
    recording_url: HttpsUrl | None = Field(
        default=None, description="The call recording, if the call was recorded."
    )

    _check_times = field_validator("answered_at", "ended_at")(_not_before_start)
    _check_disposition = field_validator("disposition")(_answered_needs_time)


# --- Outgoing calls ------------------------------------------------------------------------
class OutgoingCallStart(_OutgoingLeg):
    """A user placed an outgoing call."""


class OutgoingCallAnswer(_OutgoingLeg):
    """The called party answered an outgoing call."""

    answered_at: Timestamp = Field(description="When the called party answered.")
    ring_duration: Seconds = Field(description="Seconds from start to answer.")

    _check_answered = field_validator("answered_at")(_not_before_start)


class OutgoingCallEnd(_OutgoingLeg):
    """An outgoing call ended; ``disposition`` says how."""

    answered_at: Timestamp | None = Field(default=None, description="When answered, if it was.")
    ended_at: Timestamp = Field(description="When the call ended.")
    ring_duration: Seconds = Field(description="Seconds the call rang before answer or hangup.")
    talk_duration: Seconds = Field(description="Seconds of conversation (0 if unanswered).")
    disposition: Disposition = Field(description="How the call ended.")
    recording_url: HttpsUrl | None = Field(
        default=None, description="The call recording, if the call was recorded."
    )

    _check_times = field_validator("answered_at", "ended_at")(_not_before_start)
    _check_disposition = field_validator("disposition")(_answered_needs_time)


# --- Additional events ---------------------------------------------------------------------
class Voicemail(_CallData):
    """A caller left a voicemail; ``pbx_id`` is ``voicemail_id``."""

    voicemail_id: PbxId = Field(description="The voicemail's id; also the event's `pbx_id`.")
    caller: E164 = Field(description="Who left the message (E.164).")
    callee: E164 = Field(description="The number that was called (E.164).")
    mailbox: Digits = Field(description="Mailbox (extension) it was left in.")
    audio_url: HttpsUrl = Field(description="The recorded message.")
    duration: Seconds = Field(description="Length of the message in seconds.")
    transcription: TextBlock | None = Field(
        default=None, description="Text of the message, if any."
    )
    recorded_at: Timestamp = Field(description="When recording of the message started.")


class Tags(_CallData):
    """Tags on a call changed; one event (and one ``update_id``) per change."""

    update_id: PbxId = Field(description="The id of this tag update; also the event's `pbx_id`.")
    tags: list[Tag] = Field(max_length=100, description="All tags on the call after the update.")
    added: list[Tag] = Field(max_length=100, description="Tags this update added.")
    removed: list[Tag] = Field(max_length=100, description="Tags this update removed.")
    updated_by: UserRef | None = Field(default=None, description="Who changed them, if a user.")
    updated_at: Timestamp = Field(description="When the tags changed.")


class SpeechSegment(_Model):
    """One utterance of a transcript; times are seconds from the start of the recording."""

    speaker: Literal["agent", "customer"] = Field(description="Who spoke.")
    start: float = Field(ge=0, description="Seconds from the start of the recording.")
    end: float = Field(ge=0, description="Seconds from the start of the recording (>= start).")
    text: TextBlock = Field(description="What was said.")

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: float, info: ValidationInfo) -> float:
        start = info.data.get("start")
        if isinstance(start, float) and value < start:
            raise PydanticCustomError("before_start", "value is earlier than start")
        return value


class Speech(_CallData):
    """A call's speech transcription is ready; ``pbx_id`` is ``transcript_id``."""

    transcript_id: PbxId = Field(description="The transcript's id; also the event's `pbx_id`.")
    language: str = Field(pattern=LANGUAGE_PATTERN, description="BCP 47 language, e.g. `en-US`.")
    segments: list[SpeechSegment] = Field(max_length=10_000, description="Utterances in order.")
    completed_at: Timestamp = Field(description="When transcription finished.")


class Summary(_CallData):
    """A call summary was generated; ``pbx_id`` is ``summary_id``."""

    summary_id: PbxId = Field(description="The summary's id; also the event's `pbx_id`.")
    text: TextBlock = Field(description="The summary.")
    action_items: list[TextBlock] | None = Field(
        default=None, max_length=100, description="Follow-ups the summary found, if any."
    )
    sentiment: Literal["positive", "neutral", "negative"] | None = Field(
        default=None, description="The caller's overall sentiment, if assessed."
    )
    generated_at: Timestamp = Field(description="When the summary was generated.")


class Sms(_Model):
    """An SMS was received or sent on one of the account's numbers; ``pbx_id`` is
    ``message_id``."""

    message_id: PbxId = Field(description="The message's id; also the event's `pbx_id`.")
    direction: Direction = Field(description="`inbound` (received) or `outbound` (sent).")
    from_: E164 = Field(alias="from", description="Sender (E.164).")
    to: E164 = Field(description="Recipient (E.164).")
    text: SmsText = Field(description="The body.")
    sent_at: Timestamp = Field(description="When the message was sent.")


class Rating(_CallData):
    """A call-quality rating was computed; ``pbx_id`` is ``rating_id``."""

    rating_id: PbxId = Field(description="The rating's id; also the event's `pbx_id`.")
    mos: float = Field(ge=1.0, le=5.0, description="Mean opinion score, 1.0 to 5.0.")
    jitter_ms: float = Field(ge=0, le=10_000, description="Mean jitter in milliseconds.")
    packet_loss_pct: float = Field(ge=0, le=100, description="Packets lost, in percent.")
    score: int = Field(ge=0, le=100, description="Overall quality score, 0 to 100.")
    rated_at: Timestamp = Field(description="When the rating was computed.")


class Test(_Model):
    """A test event sent on demand to check an endpoint."""

    __test__ = False  # not a pytest test class, despite the name

    message: Message = Field(description="A short human-readable message.")
    timestamp: Timestamp = Field(description="When the test was triggered.")


#: The model of the ``data`` object, per event name (all 15, in ``names.ALL_EVENTS`` order).
MODELS: Final[dict[str, type[BaseModel]]] = {
    "incoming_call_start": IncomingCallStart,
    "incoming_call_start_chain_member_call": IncomingCallStartChainMemberCall,
    "incoming_call_end_chain_member_call": IncomingCallEndChainMemberCall,
    "incoming_call_answer": IncomingCallAnswer,
    "incoming_call_end": IncomingCallEnd,
    "outgoing_call_start": OutgoingCallStart,
    "outgoing_call_answer": OutgoingCallAnswer,
    "outgoing_call_end": OutgoingCallEnd,
    "voicemail": Voicemail,
    "tags": Tags,
    "speech": Speech,
    "summary": Summary,
    "sms": Sms,
    "rating": Rating,
    "test": Test,
}

#: Events that belong to a call (their ``data`` has ``call_id``; deliveries get a ``sequence``).
CALL_EVENTS: Final[frozenset[str]] = frozenset(
    name for name, model in MODELS.items() if issubclass(model, _CallData)
)

#: Events whose ``pbx_id`` is the call's own id (``data.call_id``).
CALL_ID_IS_PBX_ID: Final[frozenset[str]] = frozenset(
    {
        "incoming_call_start",
        "incoming_call_answer",
        "incoming_call_end",
        "outgoing_call_start",
        "outgoing_call_answer",
        "outgoing_call_end",
    }
)

#: For the other events, the ``data`` field whose value is the event's ``pbx_id``.
PBX_ID_FIELD: Final[dict[str, str]] = {
    "incoming_call_start_chain_member_call": "leg_id",
    "incoming_call_end_chain_member_call": "leg_id",
    "voicemail": "voicemail_id",
    "tags": "update_id",
    "speech": "transcript_id",
    "summary": "summary_id",
    "sms": "message_id",
    "rating": "rating_id",
    **dict.fromkeys(CALL_ID_IS_PBX_ID, "call_id"),
}


def expected_pbx_id(event: str, data: dict[str, Any]) -> str | None:
    """The ``pbx_id`` a publish request for ``event`` with validated ``data`` should carry.

    ``None`` for ``test``, whose ``pbx_id`` is free. Callers use it to check publishers.
    """
    field = PBX_ID_FIELD.get(event)
    if field is None:
        return None
    value = data.get(field)
    return value if isinstance(value, str) else None


assert tuple(MODELS) == names.ALL_EVENTS, "MODELS must cover names.ALL_EVENTS in order"
