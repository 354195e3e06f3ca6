"""Event names exactly as specs 001 and 002 spell them, in 002's order."""

from __future__ import annotations

from typing import Final

INCOMING_CALL_EVENTS: Final = (
    "incoming_call_start",
    "incoming_call_start_chain_member_call",
    "incoming_call_end_chain_member_call",
    "incoming_call_answer",
    "incoming_call_end",
)
OUTGOING_CALL_EVENTS: Final = (
    "outgoing_call_start",
    "outgoing_call_answer",
    "outgoing_call_end",
)
ADDITIONAL_EVENTS: Final = ("voicemail", "tags", "speech", "summary", "sms", "rating")

#: The 14 events a customer can subscribe to (GET /api/v2/webhooks/available).
SUBSCRIBABLE_EVENTS: Final[tuple[str, ...]] = (
    INCOMING_CALL_EVENTS + OUTGOING_CALL_EVENTS + ADDITIONAL_EVENTS
)
#: Sent on demand from the dashboard or API to verify an endpoint; never subscribable.
TEST_EVENT: Final = "test"
ALL_EVENTS: Final[tuple[str, ...]] = (*SUBSCRIBABLE_EVENTS, TEST_EVENT)

#: Groups as spec 001 presents them (the dashboard's checkbox groups).
EVENT_GROUPS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("Incoming calls", INCOMING_CALL_EVENTS),
    ("Outgoing calls", OUTGOING_CALL_EVENTS),
    ("Additional events", ADDITIONAL_EVENTS),
)

#: One-line descriptions from spec 001.
DESCRIPTIONS: Final[dict[str, str]] = {
    "incoming_call_start": "Triggered when an incoming call is initiated",
    "incoming_call_start_chain_member_call": "Triggered when a dial chain member starts ringing",
    "incoming_call_end_chain_member_call": "Triggered when a dial chain member call ends",
    "incoming_call_answer": "Triggered when an incoming call is answered",
    "incoming_call_end": "Triggered when an incoming call ends",
    "outgoing_call_start": "Triggered when an outgoing call is initiated",
    "outgoing_call_answer": "Triggered when an outgoing call is answered",
    "outgoing_call_end": "Triggered when an outgoing call ends",
    "voicemail": "Triggered when a voicemail is left",
    "tags": "Triggered when tags are added or updated on a call",
    "speech": "Triggered when speech transcription is completed",
    "summary": "Triggered when a call summary is generated",
    "sms": "Triggered when an SMS is received or sent",
    "rating": "Triggered when a call quality rating is generated",
    "test": "Manually triggered from the dashboard to verify your endpoint",
}


def is_known(name: str) -> bool:
    return name in DESCRIPTIONS
