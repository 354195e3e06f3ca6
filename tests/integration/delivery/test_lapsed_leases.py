"""Rows left leased by a failure go out when their lease runs out, not at the next poll.

CI saw it: a PostgreSQL restart, a claim committed as the server went down whose answer never
arrived, and with a two-minute poll its rows waited for the poll. The failures here are real (a
table renamed away: ``tests.support.outage.table_away``) and the poll is an hour away, so only
the worker's own wake-up (``Claims.lapse_from``) can find the rows again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy import update

from callhook.delivery import recorder
from callhook.platform import Platform
from callhook.store.tables import deliveries
from tests.factories import make_account, publish_sample
from tests.integration.postgres.workers import status_counts
from tests.support.outage import table_away
from tests.support.receiver import Receiver, Tls, ok, wait_for
from tests.support.worker import running_worker


def _ids(receiver: Receiver) -> Counter[str]:
    return Counter(json.loads(r.body)["id"] for r in receiver.received)


async def test_rows_a_lost_claim_left_leased_go_out_when_the_lease_runs_out(
    platform_factory: Callable[..., Platform], tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    platform = platform_factory(poll_interval=3600, lease_seconds=4, ca_bundle=tls.ca_path)
    try:
        account = make_account(platform, url=receiver.url)
        published = {publish_sample(platform, account.id, "sms", seed=n).id for n in range(3)}
        with ExitStack() as away:
            away.enter_context(table_away(platform, "endpoint_health"))
            async with running_worker(platform) as worker:
                await wait_for(lambda: worker.claims.lapse_at is not None)  # its claim failed
                lapse_at = worker.claims.lapse_at
                assert lapse_at is not None
                # As a claim whose commit went through while its answer was lost leaves them:
                # leased to a claim no worker holds, past the worker's retry a second after its
                # failure, ending before its lapse_at.
                with platform.db.write() as conn:
                    conn.execute(
                        update(deliveries).values(
                            claim_id="clm_lost",
                            claimed_by="gone",
                            lease_until=lapse_at - timedelta(seconds=0.5),
                        )
                    )
                away.close()
                await wait_for(lambda: len(receiver.received) == 3, timeout=30)
        assert set(_ids(receiver)) == published
    finally:
        await receiver.stop()


async def test_results_dropped_after_the_retries_are_sent_again_when_their_lease_runs_out(
    platform_factory: Callable[..., Platform],
    tls: Tls,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker is already waiting when the results are dropped: the drop must wake it."""
    monkeypatch.setattr(recorder, "FLUSH_RETRY_DELAYS", (0.05, 0.1))  # give up in 0.15 s, not 16
    answer = asyncio.Event()

    async def first_held(request: web.Request) -> web.StreamResponse:
        if len(receiver.received) == 1:
            await answer.wait()
        return await ok(request)

    receiver = await Receiver(tls.server_context(), behaviour=first_held).start()
    platform = platform_factory(poll_interval=3600, lease_seconds=2, ca_bundle=tls.ca_path)
    try:
        account = make_account(platform, url=receiver.url)
        async with running_worker(platform):
            with ExitStack() as away, caplog.at_level(logging.ERROR, "callhook.delivery"):
                # One event: its result is one batch, dropped whole (with several, a batch
                # recorded after the table is back would make the count below racy).
                published = publish_sample(platform, account.id, "sms").id
                await wait_for(lambda: len(receiver.received) == 1)
                # Claimed and in flight: now its result cannot be written (recording it feeds
                # the endpoint's health in the same transaction).
                away.enter_context(table_away(platform, "endpoint_health"))
                answer.set()
                await wait_for(lambda: "results dropped" in caplog.text)
                away.close()
            await wait_for(lambda: status_counts(platform) == {"delivered": 1}, timeout=30)
        # Twice: once before the drop, once after its lease ran out (at-least-once).
        assert _ids(receiver) == {published: 2}
    finally:
        await receiver.stop()
