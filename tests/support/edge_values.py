"""Hostile values of issue 11's classes 3 (times) and 4 (strings), shared by the tests of every
path they cross: live ingest, API v2, the CLI, the dashboard."""

from __future__ import annotations

from typing import Final

RANGE: Final = "must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"
NUMBER: Final = "not a number (Unix time is not accepted)"
SHAPE: Final = "must be an RFC 3339 date-time with a time zone"
#: The command line takes a time without a zone as UTC, and says so when it refuses one.
LOCAL_SHAPE: Final = (
    "must be an RFC 3339 date-time such as 2025-01-15T10:30:00Z, or a date and time without a"
    " zone (UTC) such as 2025-01-15T10:30"
)
INVALID: Final = "is not a valid date and time"
ID_RULE: Final = (
    "value is not a valid id (1-128 letters, digits, '.', '_', ':' or '-',"
    " the first a letter or digit)"
)

#: Times an API or CLI option refuses, with what its message says.
BAD_TIMES: Final[list[tuple[str, str]]] = [
    ("0001-01-01T00:00:00+01:00", RANGE),  # overflowed converting to UTC: a 500 before
    ("9999-12-31T23:59:59-01:00", RANGE),
    ("0999-06-01T00:00:00Z", RANGE),
    ("1969-12-31T23:59:59.999Z", RANGE),
    ("1970-01-01T00:30:00+01:00", RANGE),
    ("0", NUMBER),  # Unix time was taken by the window body, and 1970 is in range
    ("1700000000", NUMBER),
    ("-1", NUMBER),
    ("2025-01-15", SHAPE),
    ("yesterday", SHAPE),
    ("2025-02-30T00:00:00Z", INVALID),
    ("2025-01-15T10:30:00+24:00", INVALID),
]
#: Times at the edges of the range, accepted everywhere.
EDGE_TIMES: Final = [
    "1970-01-01T00:00:00Z",
    "1970-01-01T01:00:00+01:00",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T22:59:59.999-01:00",
]
#: Times in event data that ingest refuses for their range.
OUT_OF_RANGE_DATA_TIMES: Final = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0999-06-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
]
#: Ids (pbx_id, account_id) refused, and the reason given.
BAD_IDS: Final[list[tuple[object, str]]] = [
    ("a\x00b", ID_RULE),  # PostgreSQL refuses NUL: ingest answered 500 and the PBX retried
    (12345, "must be a string"),  # was stored as the text "12345" on SQLite
    ("", ID_RULE),
    ("call 1", ID_RULE),
    ("call\n1", ID_RULE),
    ("call\x1b1", ID_RULE),
    ("x" * 129, ID_RULE),
    ("ünïcode", ID_RULE),
    (True, "must be a string"),
]


def on_the_command_line(reason: str) -> str:
    """What the command line says for a ``BAD_TIMES`` reason (it also takes zone-less UTC)."""
    return LOCAL_SHAPE if reason == SHAPE else reason
