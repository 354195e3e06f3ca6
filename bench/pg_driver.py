"""psycopg 3 or asyncpg for the PostgreSQL store? ``python -m bench.pg_driver [--events N]``.

Measures claim → complete cycles (batches of ``--batch``, no HTTP) against the real server at
``--database-url`` (default ``postgresql://postgres@127.0.0.1:5432/test``), each variant in a fresh
schema holding ``--events`` pending deliveries:

- ``store/psycopg``: the real store code (sync SQLAlchemy Core, psycopg 3) called through
  ``asyncio.to_thread`` exactly as the worker does;
- ``store/asyncpg``: the same store code on SQLAlchemy's asyncpg dialect (``AsyncConnection
  .run_sync``), i.e. what switching the driver alone would give;
- ``raw/psycopg`` and ``raw/asyncpg``: hand-written SQL straight on each driver (claim
  ``UPDATE … RETURNING``, one ``executemany`` for completion): the drivers' own ceiling.

asyncpg is not a dependency: ``pip install asyncpg`` to run its variants.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import random
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bench.one_account import one_account
from callhook.core.ids import new_id
from callhook.events import sample_publish_request
from callhook.platform import Platform
from callhook.publish import parse_event
from callhook.settings import Settings
from callhook.store import queue
from callhook.store.queue import AttemptResult, ClaimedJob

KEY = "YmVuY2gtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE"
CLAIM_SQL = """
UPDATE deliveries SET claim_id = $1, claimed_by = 'bench', lease_until = $2
WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3
             AND (lease_until IS NULL OR lease_until <= $3)
             ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING id, attempts
"""
COMPLETE_SQL = """
UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, claim_id = NULL,
  claimed_by = NULL, lease_until = NULL, last_attempt_at = $3, last_status_code = 200,
  delivered_at = $3 WHERE id = $1 AND claim_id = $2
"""


def prepare(base: str, events: int) -> tuple[str, Platform]:
    schema = f"bench_{secrets.token_hex(4)}"
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base}?options={quote(f'-csearch_path={schema}')}"
    platform = Platform.create(Settings(database_url=url, master_key=KEY))
    rng = random.Random(1)
    now = datetime.now(UTC)
    acc_id = one_account(platform, rng=rng, now=now)
    template = sample_publish_request("incoming_call_end", rng, now=now, account_id=acc_id)
    for start in range(0, events, 500):
        platform.publisher.publish(
            [
                parse_event(
                    {
                        **template,
                        "pbx_id": f"p-{i}",
                        "data": {**template["data"], "call_id": f"p-{i}"},
                    }
                )
                for i in range(start, min(start + 500, events))
            ]
        )
    return schema, platform


def _schema_of(platform: Platform) -> str:
    options = platform.db.engine.url.query["options"]
    return str(options).split("=")[-1]


def _results(jobs: list[ClaimedJob], now: datetime) -> list[AttemptResult]:
    return [AttemptResult(j, now, 1.0, True, 200, "ok", None, None, None, None) for j in jobs]


async def store_psycopg(platform: Platform, batch: int) -> int:
    def claim() -> list[ClaimedJob]:
        now = datetime.now(UTC)
        with platform.db.write() as conn:
            return queue.claim(
                conn,
                worker_id="bench",
                claim_id=new_id("clm", now),
                now=now,
                lease=timedelta(seconds=30),
                limit=batch,
                box=platform.box,
                secret_cache=cache,
            )

    def complete(jobs: list[ClaimedJob]) -> None:
        with platform.db.write() as conn:
            queue.complete(conn, _results(jobs, datetime.now(UTC)))

    cache: dict[str, str] = {}
    done = 0
    while jobs := await asyncio.to_thread(claim):
        await asyncio.to_thread(complete, jobs)
        done += len(jobs)
    return done


async def store_asyncpg(platform: Platform, batch: int) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    url = platform.db.engine.url.set(drivername="postgresql+asyncpg")
    schema = _schema_of(platform)
    url = url.set(query={})
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    cache: dict[str, str] = {}

    def claim(c: Any, now: datetime) -> list[ClaimedJob]:
        return queue.claim(
            c,
            worker_id="bench",
            claim_id=new_id("clm", now),
            now=now,
            lease=timedelta(seconds=30),
            limit=batch,
            box=platform.box,
            secret_cache=cache,
        )

    done = 0
    try:
        while True:
            now = datetime.now(UTC)
            async with engine.begin() as conn:
                jobs = await conn.run_sync(claim, now)
            if not jobs:
                return done
            async with engine.begin() as conn:
                res = _results(jobs, datetime.now(UTC))
                await conn.run_sync(queue.complete, res)
            done += len(jobs)
    finally:
        await engine.dispose()


async def raw_asyncpg(platform: Platform, batch: int) -> int:
    asyncpg: Any = importlib.import_module("asyncpg")
    schema = _schema_of(platform)
    conn = await asyncpg.connect(
        "postgresql://postgres@127.0.0.1:5432/test", server_settings={"search_path": schema}
    )
    done = 0
    try:
        while True:
            now = datetime.now(UTC)
            claim_id = new_id("clm", now)
            async with conn.transaction():
                lease_until = now + timedelta(seconds=30)
                rows = await conn.fetch(CLAIM_SQL, claim_id, lease_until, now, batch)
            if not rows:
                return done
            async with conn.transaction():
                await conn.executemany(COMPLETE_SQL, [(r["id"], claim_id, now) for r in rows])
            done += len(rows)
    finally:
        await conn.close()


async def raw_psycopg(platform: Platform, batch: int) -> int:
    import psycopg

    cargs, cparams = platform.db.connect_args()
    claim_sql = CLAIM_SQL.replace("$1", "%(c)s").replace("$2", "%(l)s")
    claim_sql = claim_sql.replace("$3", "%(n)s").replace("$4", "%(b)s")
    complete_sql = COMPLETE_SQL.replace("$1", "%(i)s").replace("$2", "%(c)s")
    complete_sql = complete_sql.replace("$3", "%(n)s")

    def run() -> int:
        done = 0
        with psycopg.connect(*cargs, **cparams) as conn:
            while True:
                now = datetime.now(UTC)
                claim_id = new_id("clm", now)
                with conn.transaction():
                    params = {"c": claim_id, "l": now + timedelta(seconds=30), "n": now, "b": batch}
                    rows = conn.execute(claim_sql, params).fetchall()
                if not rows:
                    return done
                with conn.transaction(), conn.cursor() as cur:
                    done_rows = [{"i": r[0], "c": claim_id, "n": now} for r in rows]
                    cur.executemany(complete_sql, done_rows)
                done += len(rows)

    return await asyncio.to_thread(run)


VARIANTS: dict[str, Callable[[Platform, int], Coroutine[Any, Any, int]]] = {
    "store/psycopg": store_psycopg,
    "store/asyncpg": store_asyncpg,
    "raw/psycopg": raw_psycopg,
    "raw/asyncpg": raw_asyncpg,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append")
    args = parser.parse_args()
    import psycopg

    for name in args.only or list(VARIANTS):
        schema, platform = prepare(args.database_url, args.events)
        try:
            t0 = time.perf_counter()
            done = asyncio.run(VARIANTS[name](platform, args.batch))
            elapsed = time.perf_counter() - t0
            print(f"{name:14} {done:7d} deliveries  {done / elapsed:8.0f} claim→complete/s")
        finally:
            platform.db.dispose()
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
