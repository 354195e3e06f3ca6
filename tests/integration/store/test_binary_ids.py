"""Ids as 16 bytes on SQLite (``types.StoredId``, migration 0009_binary_ids), on both backends:
what is stored, that every read and lookup gives the text back, that strings without an id's
shape are kept as they are, and that the migration rewrites every id column both ways and
changes nothing else."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, insert, select

import callhook.store.migrations as migrations
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import accounts as account_store
from callhook.store import deliveries as delivery_store
from callhook.store.migrate import downgrade, upgrade
from callhook.store.tables import accounts, metadata
from callhook.store.types import StoredId
from tests import factories
from tests.integration.store.test_migration_compact import T0


def _migration() -> ModuleType:
    path = Path(migrations.__file__).parent / "versions" / "0009_binary_ids.py"
    spec = importlib.util.spec_from_file_location("binary_ids", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _id_columns() -> set[tuple[str, str, str]]:
    return {
        (table.name, column.name, column.type.prefix)
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, StoredId)
    }


def test_the_migration_rewrites_every_column_that_holds_an_id() -> None:
    # A StoredId column added later without a migration of its values would hold text ids
    # that lookups (binding bytes) never find.
    assert set(_migration().COLUMNS) == _id_columns()


def _delivered(platform: Platform) -> tuple[str, str]:
    """An account with an endpoint and one event delivered at its second attempt (so one
    attempt is a row of ``attempts``): (account id, delivery id)."""
    account = factories.make_account(platform, url="https://a.example.com/h")
    published = factories.publish_sample(platform, account.id, "sms")
    assert published.delivery_id is not None
    for status in (500, 200):
        [_] = factories.attempt_due(
            platform,
            status=status,
            retry_in=timedelta(0),
            response_body=lambda _: "ok",
        )
    return account.id, published.delivery_id


def _stored(conn: Connection, table: str, column: str) -> list[tuple[str, int]]:
    """(storage class, length) of every non-null value of ``table.column`` on SQLite."""
    rows = conn.exec_driver_sql(
        f'SELECT typeof("{column}"), length("{column}") FROM "{table}" WHERE "{column}" IS NOT NULL'
    )
    return [(str(kind), int(length)) for kind, length in rows]


def test_sqlite_stores_16_bytes_and_every_read_gives_the_text(tmp_path: Path) -> None:
    with factories.use_backend("sqlite"):
        platform = factories.make_platform(tmp_path, clock=FakeClock(T0))
    account_id, delivery_id = _delivered(platform)
    with platform.db.read() as conn:
        for table, column, _ in sorted(_id_columns()):
            assert {kind for kind, _ in _stored(conn, table, column)} <= {"blob"}, (table, column)
            assert {n for _, n in _stored(conn, table, column)} <= {16}, (table, column)
        for table, column in (("deliveries", "endpoint_id"), ("attempts", "delivery_id")):
            assert _stored(conn, table, column), f"{table} has no rows: the test proves nothing"
        detail = delivery_store.get(conn, delivery_id)
        assert (detail.id, detail.account_id) == (delivery_id, account_id)
        assert detail.event_id.startswith("evt_")
        assert detail.endpoint_id.startswith("ep_")
        assert [a.status_code for a in detail.attempt_log] == [500, 200]


def test_a_string_without_an_ids_shape_is_kept_and_found(platform_factory: Any) -> None:
    platform: Platform = platform_factory()
    odd = "acc_made-up by hand"
    with platform.db.write() as conn:
        conn.execute(insert(accounts).values(id=odd, name="Odd", created_at=T0))
    with platform.db.read() as conn:
        found = account_store.get(conn, odd)
        assert found is not None
        assert found.id == odd
        assert conn.execute(select(accounts.c.id).where(accounts.c.id == odd)).scalar() == odd
        if conn.dialect.name == "sqlite":
            assert _stored(conn, "accounts", "id") == [("text", len(odd))]


def _snapshot(platform: Platform) -> dict[str, list[str]]:
    """Every row of every table holding ids, as text, in a stable order (attempts without
    their own ids: migration 0010's downgrade writes the latest attempts back as new rows)."""
    tables = sorted({table for table, _, _ in _id_columns()})
    with platform.db.read() as conn:
        return {
            table: sorted(
                repr(tuple(row)[1:] if table == "attempts" else tuple(row))
                for row in conn.exec_driver_sql(f'SELECT * FROM "{table}"')
            )
            for table in tables
        }


def test_the_migration_goes_both_ways_and_changes_nothing_else(platform_factory: Any) -> None:
    platform: Platform = platform_factory(clock=FakeClock(T0))
    _, delivery_id = _delivered(platform)
    downgrade(platform.db, "0008_status_indexes")
    before = _snapshot(platform)
    assert before["attempts"], "no attempt rows: the test proves nothing"
    sqlite = platform.db.engine.dialect.name == "sqlite"
    if sqlite:
        assert "'dlv_" in before["deliveries"][0]  # text again, as 0008 stored it
    upgrade(platform.db)
    with platform.db.read() as conn:
        if sqlite:
            for table, column, _ in _id_columns():
                assert {kind for kind, _ in _stored(conn, table, column)} <= {"blob"}
        assert delivery_store.get(conn, delivery_id).id == delivery_id
    downgrade(platform.db, "0008_status_indexes")
    assert _snapshot(platform) == before
