"""binary ids on SQLite: account, endpoint, event and delivery ids stored as their 16 bytes

Revision ID: 0009_binary_ids
Revises: 0008_status_indexes
Create Date: 2026-11-30 14:30:00.000000

Issue 16, "store less per delivery" (docs/decisions.md, "Ids as 16 bytes on SQLite"): every
``acc_…``, ``ep_…``, ``evt_…`` and ``dlv_…`` id in every column that holds one becomes the 16
bytes of its 128 bits (big-endian, so byte order is id order), read back as the same text by
``store.types.StoredId``. A delivered event holds such ids ~19 times in rows and indexes;
each takes 14 bytes less. The columns keep their declared ``VARCHAR(40)`` (SQLite keeps a BLOB
a BLOB under text affinity), so only values change. A value without an id's shape stays text
(``StoredId`` stores such values as they are). Foreign keys hold: both sides of each use the
same prefix, so both change alike (migrations run with SQLite's foreign keys off anyway).
PostgreSQL keeps text ids: nothing to do there.

Every row of these tables is rewritten, with its index entries: 1.7 s for 20,000 delivered
events on the 2-core development machine (``bench.storage``'s database), ~80 s per million.
The file does not shrink by itself (SQLite reuses the freed pages); ``VACUUM`` afterwards
gives them back to the file system.

The conversion is written out here rather than imported, so this migration keeps meaning what
it meant when later code changes.
"""

# The SQL here is built from the constants below only (no input): S608.
# ruff: noqa: S608
from __future__ import annotations

import re
from typing import Any

from alembic import op

revision = "0009_binary_ids"
down_revision = "0008_status_indexes"
branch_labels = None
depends_on = None

#: (table, column, prefix) of every column that holds one of these ids at this revision.
COLUMNS = (
    ("accounts", "id", "acc"),
    ("users", "account_id", "acc"),
    ("api_tokens", "account_id", "acc"),
    ("endpoints", "id", "ep"),
    ("endpoints", "account_id", "acc"),
    ("endpoint_subscriptions", "endpoint_id", "ep"),
    ("endpoint_secrets", "endpoint_id", "ep"),
    ("call_sequences", "account_id", "acc"),
    ("events", "id", "evt"),
    ("events", "account_id", "acc"),
    ("deliveries", "id", "dlv"),
    ("deliveries", "event_id", "evt"),
    ("deliveries", "account_id", "acc"),
    ("deliveries", "endpoint_id", "ep"),
    ("attempts", "delivery_id", "dlv"),
    ("endpoint_health", "endpoint_id", "ep"),
    ("endpoint_health", "account_id", "acc"),
    ("endpoint_events", "endpoint_id", "ep"),
    ("endpoint_events", "account_id", "acc"),
    ("alerts", "account_id", "acc"),
    ("alerts", "endpoint_id", "ep"),
)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY = re.compile("[0-7][0-9A-HJKMNP-TV-Z]{25}")
_TO_DIGITS = str.maketrans(_CROCKFORD, "0123456789abcdefghijklmnopqrstuv")


def _to_bytes(prefix: str, value: Any) -> Any:
    """16 bytes for ``<prefix>_<26 Crockford base32 characters>``; anything else unchanged."""
    if not isinstance(value, str) or not value.startswith(prefix + "_"):
        return value
    body = value[len(prefix) + 1 :]
    if _BODY.fullmatch(body) is None:
        return value
    return int(body.translate(_TO_DIGITS), 32).to_bytes(16, "big")


def _to_text(prefix: str, value: Any) -> Any:
    if not isinstance(value, bytes) or len(value) != 16:
        return value
    number = int.from_bytes(value, "big")
    chars = [_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5)]
    return prefix + "_" + "".join(chars)


def _rewrite(function: str, kind: str) -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.create_function(
        function, 2, _to_bytes if kind == "text" else _to_text, deterministic=True
    )
    for table, column, prefix in COLUMNS:
        conn.exec_driver_sql(
            f'UPDATE "{table}" SET "{column}" = {function}(?, "{column}")'
            f' WHERE typeof("{column}") = ?',
            (prefix, kind),
        )


def upgrade() -> None:
    _rewrite("callhook_id_bytes", "text")


def downgrade() -> None:
    _rewrite("callhook_id_text", "blob")
