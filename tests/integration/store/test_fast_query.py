"""``dialect.FastQuery`` gives what ``conn.execute`` gives for the same statement and values,
on SQLite and PostgreSQL: ids, aware times, booleans and bytes through their types, lists of
every length (none, one, several) in ``IN``, text statements with typed columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Boolean, bindparam, select, text

from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store.dialect import FastQuery
from callhook.store.tables import deliveries, endpoints, events
from callhook.store.types import StoredId, UTCDateTime
from tests.factories import make_account, publish_sample

_JOINED = (
    select(
        deliveries.c.id,
        deliveries.c.endpoint_id,
        deliveries.c.window_start,
        deliveries.c.holds_line,
        events.c.body,
        events.c.created_at,
        endpoints.c.enabled,
    )
    .join(events, events.c.id == deliveries.c.event_id)
    .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.window_start <= bindparam("now", type_=UTCDateTime),
    )
    .order_by(deliveries.c.id)
)
_TEXT = text(
    "SELECT id, endpoint_id, next_attempt_at, holds_line FROM deliveries"
    " WHERE endpoint_id IN :endpoints AND next_attempt_at <= :now ORDER BY id"
).bindparams(
    bindparam("endpoints", expanding=True, type_=StoredId("ep")),
    bindparam("now", type_=UTCDateTime),
)
_TEXT = _TEXT.columns(  # type: ignore[assignment]
    id=StoredId("dlv"), endpoint_id=StoredId("ep"), next_attempt_at=UTCDateTime, holds_line=Boolean
)


@pytest.fixture
def platform(platform_factory: Callable[..., Platform]) -> Platform:
    platform = platform_factory(clock=FakeClock())
    for n in range(2):
        account = make_account(platform, url=f"https://a{n}.example.com/")
        for seed in range(3):
            publish_sample(platform, account.id, seed=seed)
    return platform


def _slow(platform: Platform, statement: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with platform.db.read() as conn:
        return [tuple(row) for row in conn.execute(statement, params)]


def _fast(platform: Platform, query: FastQuery, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with platform.db.read() as conn:
        return query.rows(conn, params)


@pytest.mark.parametrize("how_many", [0, 1, 3, 6])
def test_a_select_with_a_list_reads_as_conn_execute_does(platform: Platform, how_many: int) -> None:
    with platform.db.read() as conn:
        ids = [row[0] for row in conn.execute(select(deliveries.c.id).order_by(deliveries.c.id))]
    assert len(ids) == 6
    params = {"ids": ids[:how_many], "now": platform.clock.now()}
    query = FastQuery(_JOINED)
    got = _fast(platform, query, params)
    assert got == _slow(platform, _JOINED, params)
    assert len(got) == how_many
    for row in got:
        assert row[0].startswith("dlv_")
        assert row[1].startswith("ep_")
        assert row[2].tzinfo is not None
        assert row[5].tzinfo is not None
        assert isinstance(row[3], bool)
        assert row[6] is True
        assert isinstance(row[4], bytes)
    # The same query object again, with another length and the first one back.
    assert _fast(platform, query, {**params, "ids": ids[:2]}) == _slow(
        platform, _JOINED, {**params, "ids": ids[:2]}
    )
    assert _fast(platform, query, params) == got


def test_a_text_statement_with_typed_columns_reads_as_conn_execute_does(
    platform: Platform,
) -> None:
    with platform.db.read() as conn:
        endpoint_ids = sorted(conn.execute(select(endpoints.c.id)).scalars())
    query = FastQuery(_TEXT)
    for chosen in ([], endpoint_ids[:1], endpoint_ids):
        params = {"endpoints": chosen, "now": platform.clock.now()}
        got = _fast(platform, query, params)
        assert got == _slow(platform, _TEXT, params)
        assert len(got) == 3 * len(chosen)


def test_a_value_written_into_the_statement_is_refused(platform: Platform) -> None:
    statement = select(deliveries.c.id).where(deliveries.c.status == "pending")
    with platform.db.read() as conn, pytest.raises(ValueError, match="not values"):
        FastQuery(statement).rows(conn, {})


def test_a_literal_execute_parameter_is_refused(platform: Platform) -> None:
    statement = select(deliveries.c.id).where(
        deliveries.c.attempts == bindparam("n", literal_execute=True)
    )
    with platform.db.read() as conn, pytest.raises(ValueError, match="literal-execute"):
        FastQuery(statement).rows(conn, {"n": 0})


def test_not_in_a_padded_list_and_a_set_read_as_conn_execute_does(platform: Platform) -> None:
    """Lists are padded to a power of two with their last value: ``NOT IN`` is unchanged, and
    lengths 1…20 take at most six expansions."""
    statement = (
        select(deliveries.c.id)
        .where(deliveries.c.id.not_in(bindparam("ids", expanding=True)))
        .order_by(deliveries.c.id)
    )
    query = FastQuery(statement)
    with platform.db.read() as conn:
        ids = [row[0] for row in conn.execute(select(deliveries.c.id).order_by(deliveries.c.id))]
    for n in (3, 5):
        params = {"ids": ids[:n]}
        assert _fast(platform, query, params) == _slow(platform, statement, params)
        assert len(_fast(platform, query, params)) == 6 - n
    assert _fast(platform, query, {"ids": set(ids[:2])}) == [(i,) for i in ids[2:]]
    for n in range(1, 21):
        _fast(platform, query, {"ids": [*ids, *[f"dlv_{i}" for i in range(n)]][:n]})
    assert len(query._plans) <= 6  # what the padding bounds


def test_text_columns_out_of_order_are_refused(platform: Platform) -> None:
    statement = text("SELECT id, window_start FROM deliveries").columns(
        window_start=UTCDateTime, id=StoredId("dlv")
    )
    with platform.db.read() as conn, pytest.raises(ValueError, match="declared"):
        FastQuery(statement).rows(conn, {})
