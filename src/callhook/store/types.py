"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import BigInteger, Column, DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator, TypeEngine

from callhook.core.ids import id_from_bytes, id_to_bytes
from callhook.errors import PayloadInvalid


def check_length(column: Column[Any], value: str, field: str) -> str:
    """``value`` if it fits ``column``'s declared length (characters); ``PayloadInvalid``
    naming ``field`` otherwise. SQLite keeps longer text and PostgreSQL refuses it with a
    driver error (a traceback from ``accounts create`` there, and a row that later stopped
    ``copy-database``): checked before the write, both refuse it alike."""
    length = getattr(column.type, "length", None)
    if length is not None and len(value) > length:
        raise PayloadInvalid(f"{field}: at most {length} characters", field=field)
    return value


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


class StoredId(TypeDecorator[str]):
    """Callhook's own ids (``acc_…``, ``ep_…``, ``evt_…``, ``dlv_…``) of one prefix: the text
    form in and out.

    SQLite stores each as its 16 bytes (``core.ids.id_to_bytes``: a BLOB, byte order is id
    order), where the 30 characters of text it stored before took ~14 bytes more in the row
    and again in every index that holds it: ~270 of the ~1,360 bytes a delivered event took
    (docs/decisions.md, issue 16). A string without the id's shape (another prefix, an id a test
    made up, a value from before migration 0009 not yet rewritten) is stored as it is, so
    nothing is refused or lost; SQLite never finds a TEXT equal to a BLOB, so a lookup of such
    a string finds only rows holding that very string. PostgreSQL keeps the text.

    The column's declared type stays ``VARCHAR(40)``: SQLite keeps a BLOB a BLOB in a column of
    text affinity, so migration 0009 only rewrites values. Raw SQL that binds or reads such a
    column must type the parameter or the result column with this type; ``FastStatement``
    applies it to its typed parameters itself.
    """

    impl = String(40)
    cache_ok = True

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return self.encode(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, bytes):
            return _text_of(self.prefix, value)
        return cast("str | None", value)

    def encode(self, value: str) -> bytes | str:
        """SQLite's stored form of ``value``: its 16 bytes, or the text as it is."""
        return _stored_form(self.prefix, value)

    def driver_form(self, dialect_name: str) -> Callable[[Any], Any] | None:
        """What turns a value into this dialect's stored form (None: nothing), for statements
        run on the DB-API cursor (``dialect.FastStatement``)."""
        if dialect_name != "sqlite":
            return None
        encode = self.encode
        return lambda value: None if value is None else encode(value)


# Account and endpoint ids come and go in nearly every statement: each conversion took ~2 µs,
# a cached one ~0.2 (measured: listing 100 deliveries decodes 400 ids; a publish reads its
# account's endpoints). Event and delivery ids pass through once and fall out.
@functools.lru_cache(maxsize=8192)
def _text_of(prefix: str, raw: bytes) -> str:
    return id_from_bytes(prefix, raw)


@functools.lru_cache(maxsize=8192)
def _stored_form(prefix: str, value: str) -> bytes | str:
    raw = id_to_bytes(prefix, value)
    return value if raw is None else raw
