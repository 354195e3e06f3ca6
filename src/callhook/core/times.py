"""Times read at a trust boundary: the one accepted range, and RFC 3339 parsing.

Every time Callhook reads from outside — ingest payloads (``events.models.Timestamp``), API v2
query parameters and bodies, dashboard filters, CLI options — must lie between
:data:`EARLIEST` and :data:`LATEST` once converted to UTC (docs/events.md, docs/api.md):

- ``1970-01-01T00:00:00Z``: the Unix epoch. Nothing Callhook stores is older (its own times come
  from its clock), call events before it are a PBX clock fault, and receivers commonly turn
  times into Unix time;
- ``9999-12-31T23:59:59.999999Z``: the last instant with a four-digit year, so every time we
  write back is RFC 3339 (which has no five-digit years), and converting the input to UTC
  cannot overflow Python's ``datetime`` (``9999-12-31T23:59:59-01:00`` would).

The wire format is RFC 3339 with a time zone: ``2025-01-15T10:30:00Z``,
``2025-01-15T11:30:00.250+01:00``. Unix times (``0``, ``1700000000``) are refused with a message
saying so. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from callhook.errors import PayloadInvalid

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
#: The range in words, for error messages and docs.
RANGE_TEXT: Final = "from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"
EXAMPLE: Final = "2025-01-15T10:30:00Z"
#: A time the command line also takes (``local_is_utc``): no zone, read as UTC.
LOCAL_EXAMPLE: Final = "2025-01-15T10:30"

#: RFC 3339 ``date-time`` (section 5.6; ``t``/``z`` and a space separator are allowed there too).
RFC3339: Final = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
#: JSON Schema ``pattern`` for API documents: RFC 3339 with a year from 1970 to 9999. A pattern
#: cannot say "once converted to UTC" (``1970-01-01T00:30:00+01:00`` matches yet is refused).
RFC3339_PATTERN: Final = (
    r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
# The same without the time zone and with optional seconds: what people type (CLI only).
_LOCAL = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(:\d{2}(?:\.\d{1,9})?)?$", re.ASCII)
# A number where a time was expected: Unix seconds or milliseconds, as text or JSON.
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$", re.ASCII)


class TimeInvalid(ValueError):
    """A time that is not RFC 3339, or outside the range; ``str()`` is the reason, e.g.
    ``"must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"``."""


def in_range(when: datetime) -> datetime:
    """``when`` (aware) in UTC; :class:`TimeInvalid` outside [EARLIEST, LATEST]."""
    try:
        utc = when.astimezone(UTC)
    except OverflowError:  # before year 1 or after year 9999 once in UTC
        raise TimeInvalid(f"must be {RANGE_TEXT}") from None
    if not EARLIEST <= utc <= LATEST:
        raise TimeInvalid(f"must be {RANGE_TEXT}")
    return utc


def parse_rfc3339(raw: object, *, local_is_utc: bool = False) -> datetime:
    """An RFC 3339 date-time with a time zone, as an aware UTC datetime in the range.

    ``local_is_utc`` also takes a time without a zone (``2025-01-15T10:30``, seconds optional)
    as UTC: for people typing at the command line, never for the API. Raises
    :class:`TimeInvalid` whose message says what was wrong (a number, the shape, the range).
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise TimeInvalid(f"must be an RFC 3339 date-time string such as {EXAMPLE}")
    if not isinstance(raw, str) or _NUMBER.match(raw):
        raise TimeInvalid(
            f"must be an RFC 3339 date-time such as {EXAMPLE}, not a number (Unix time is not "
            "accepted)"
        )
    match = RFC3339.fullmatch(raw)
    zone = None
    if match is not None:
        date, clock, fraction, zone = match.groups()
    elif local_is_utc and (local := _LOCAL.fullmatch(raw)) is not None:
        date, clock, seconds = local.groups()
        clock += seconds or ":00"
        clock, _, fraction = clock.partition(".")
    elif local_is_utc:  # the zone is not what is missing: say what is taken
        raise TimeInvalid(
            f"must be an RFC 3339 date-time such as {EXAMPLE}, or a date and time without a"
            f" zone (UTC) such as {LOCAL_EXAMPLE}"
        )
    else:
        raise TimeInvalid(f"must be an RFC 3339 date-time with a time zone, such as {EXAMPLE}")
    offset = "+00:00" if zone is None or zone in "Zz" else zone
    micro = f".{fraction[:6]:0<6}" if fraction else ""
    try:
        when = datetime.fromisoformat(f"{date}T{clock}{micro}{offset}")
    except ValueError:  # February 30, hour 25, offset +24:00…
        raise TimeInvalid(f"is not a valid date and time (RFC 3339, such as {EXAMPLE})") from None
    return in_range(when)


def time_field(raw: object, field: str, *, local_is_utc: bool = False) -> datetime:
    """:func:`parse_rfc3339` for a named field: :class:`PayloadInvalid` (HTTP 422) naming it,
    e.g. ``"since: must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"``."""
    try:
        return parse_rfc3339(raw, local_is_utc=local_is_utc)
    except TimeInvalid as exc:
        raise PayloadInvalid(f"{field}: {exc}", field=field) from exc


def check_span(since: datetime | None, until: datetime | None) -> None:
    """A [since, until) span that holds some instant when both ends are given:
    :class:`PayloadInvalid` naming ``until`` (HTTP 422) when it is not later than ``since``.
    The one rule for every listing and redelivery window (API, dashboard, CLI)."""
    if since is not None and until is not None and until <= since:
        raise PayloadInvalid("until: must be later than since.", field="until")
