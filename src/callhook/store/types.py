"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out.

    PostgreSQL stores ``timestamptz`` (8 bytes). SQLite stores an integer: microseconds since
    1970-01-01 UTC (8 bytes in a row or an index, where the ISO text it stored before took 26;
    integer order is time order; issue 16). Converted here directly because SQLAlchemy's
    per-value formatting was a sixth of the cost of publishing (profiled). Raw SQL that compares
    such a column must bind the other side through this type (or ``time_encoder``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return time_encoder(dialect.name)(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return decode_time(value)


EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_microseconds(value: datetime) -> int:
    """An aware datetime as integer microseconds since 1970-01-01 UTC (SQLite's stored form)."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
    return (value - EPOCH) // _MICROSECOND


def _to_sqlite(value: datetime | None) -> int | None:
    return None if value is None else to_microseconds(value)


def _to_timestamptz(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
    return value.astimezone(UTC)


def time_encoder(dialect_name: str) -> Callable[[datetime | None], Any]:
    """How ``UTCDateTime`` values are handed to this dialect's driver (for statements run on
    the DB-API cursor directly, see ``dialect.FastStatement``)."""
    return _to_sqlite if dialect_name == "sqlite" else _to_timestamptz


def decode_time(value: Any) -> datetime | None:
    """A stored ``UTCDateTime`` value (SQLite integer microseconds, or the ISO text SQLite held
    before migration 0004; a PostgreSQL datetime) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, int):
        return EPOCH + timedelta(microseconds=value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
