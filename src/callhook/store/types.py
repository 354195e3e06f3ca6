"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out.

    PostgreSQL stores ``timestamptz``. SQLite stores naive UTC text in SQLAlchemy's own DATETIME
    format (``2026-01-15 10:30:00.000000``: fixed width, so text order is time order); it is
    written and parsed here directly because SQLAlchemy's per-value formatting was a sixth of the
    cost of publishing (profiled).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return time_encoder(dialect.name)(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return decode_time(value)


def _to_sqlite(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


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
    """A stored ``UTCDateTime`` value (SQLite text or a PostgreSQL datetime) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
