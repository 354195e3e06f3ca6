"""Canned, realistic content for sample events: the account's numbers, its users, call topics
(dialogue, summary, tags, voicemail) and SMS threads. Plain data; no logic, no I/O.

Numbers are in ranges reserved for fiction (US 555-01xx, UK 020 7946 0xxx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: The account's numbers (DIDs) and the line names they belong to.
DIDS: Final[tuple[tuple[str, str], ...]] = (
    ("+14155550100", "Sales"),
    ("+14155550101", "Support"),
    ("+12125550142", "New York office"),
    ("+442079460123", "London office"),
)

#: The account's PBX users (dial-chain members, agents); copy before putting one in a payload.
DIRECTORY: Final[tuple[dict[str, str], ...]] = tuple(
    {"extension": str(101 + i), "user_id": f"usr_{4711 + 37 * i}", "user_name": name}
    for i, name in enumerate(
        (
            "Maria Garcia",
            "James Chen",
            "Aisha Okafor",
            "Tom Becker",
            "Sofia Rossi",
            "Daniel Kim",
            "Emma Larsen",
        )
    )
)


@dataclass(frozen=True)
class Topic:
    """What a sample call is about; ``{agent}`` in the dialogue is the agent's first name."""

    dialogue: tuple[tuple[Literal["agent", "customer"], str], ...]
    summary: str
    action_items: tuple[str, ...]
    sentiment: Literal["positive", "neutral", "negative"]
    tags: tuple[str, ...]
    voicemail: str


TOPICS: Final[tuple[Topic, ...]] = (
    Topic(
        dialogue=(
            ("agent", "Thanks for calling Northwind, this is {agent}. How can I help?"),
            ("customer", "Hi, I think I was charged twice on my last invoice."),
            ("agent", "Sorry about that. Could you read me the invoice number?"),
            ("customer", "Sure, it's INV-20931."),
            (
                "agent",
                "I see the duplicate charge. I'll refund it today; allow three to five days.",
            ),
            ("customer", "Great, thanks for sorting that out so quickly."),
        ),
        summary=(
            "The customer reported a duplicate charge on invoice INV-20931. The agent confirmed "
            "the duplicate and issued a refund, expected within three to five business days."
        ),
        action_items=("Refund the duplicate charge on INV-20931", "Email the refund confirmation"),
        sentiment="positive",
        tags=("billing", "refund"),
        voicemail="Hi, it's about invoice INV-20931, I think I was charged twice. Please call me.",
    ),
    Topic(
        dialogue=(
            ("agent", "Northwind support, {agent} speaking."),
            ("customer", "Our office internet has been dropping every few minutes since morning."),
            ("agent", "Let me check your line. Can you restart the router while I watch?"),
            ("customer", "Okay, it's restarting now."),
            ("agent", "I see errors on the line, so I'm booking a technician for tomorrow."),
            ("customer", "Tomorrow is fine, but it's hurting our business today."),
            ("agent", "Understood. I've also added a credit for today's outage."),
        ),
        summary=(
            "The customer's office connection keeps dropping. Line errors were found; a "
            "technician visit is booked for tomorrow and a credit was applied for the outage."
        ),
        action_items=("Dispatch technician tomorrow", "Apply one-day outage credit"),
        sentiment="negative",
        tags=("support", "outage"),
        voicemail="Our internet keeps dropping at the office, can someone call us back urgently?",
    ),
    Topic(
        dialogue=(
            ("agent", "Hello, this is {agent} from Northwind, how can I help you today?"),
            ("customer", "I'd like to move my appointment on Thursday to next week."),
            ("agent", "No problem. Would Tuesday at 10 am work?"),
            ("customer", "Tuesday at 10 is perfect."),
            ("agent", "Done, you'll get a confirmation text shortly."),
        ),
        summary="The customer moved their Thursday appointment to Tuesday at 10 am.",
        action_items=("Send appointment confirmation by SMS",),
        sentiment="neutral",
        tags=("appointment",),
        voicemail="Hi, I need to reschedule my appointment on Thursday. Thanks, bye.",
    ),
    Topic(
        dialogue=(
            ("agent", "Northwind sales, {agent} here."),
            ("customer", "We're a team of twenty and looking at your business phone plans."),
            ("agent", "The Business plan fits that size; it includes call recording."),
            ("customer", "Does it include transcription and summaries too?"),
            ("agent", "Yes, both. I can send you a quote today."),
            ("customer", "Please do, and we'd like a demo next week."),
        ),
        summary=(
            "A prospect with a team of twenty asked about business plans, including "
            "transcription and summaries. The agent will send a quote and schedule a demo."
        ),
        action_items=("Send quote for 20 seats", "Schedule a demo next week"),
        sentiment="positive",
        tags=("sales", "lead"),
        voicemail="Hello, we're interested in your business plans for about twenty people.",
    ),
)

#: SMS conversations; even lines are the customer's, odd lines the account's replies.
SMS_THREADS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "Hi, is my order 58213 shipped yet?",
        "Hi! Yes, order 58213 shipped today; tracking follows by email.",
        "Great, thank you!",
        "You're welcome. Reply STOP to opt out of texts.",
    ),
    (
        "Can I move tomorrow's appointment to 3pm?",
        "3pm works. You're booked for tomorrow at 3pm.",
        "Perfect, see you then.",
    ),
    (
        "Is the office open on Saturday?",
        "We're open Saturday 9am-1pm.",
    ),
)
