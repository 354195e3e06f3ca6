"""Rows left leased by a failed statement go out when their lease runs out, not at the next
poll. (A PostgreSQL restart in CI did this: a claim committed as the server went down, its
answer never arrived, and with a two-minute poll its rows waited for the poll.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta

from sqlalchemy import update

from callhook.platform import Platform
from callhook.store.tables import deliveries
from tests.factories import make_account, publish_sample
from tests.support.outage import table_away
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker


async def test_rows_a_failure_left_leased_go_out_when_the_lease_runs_out(
    platform_factory: Callable[..., Platform], tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    # No poll to fall back on: only the worker's own wake-up can find the rows again.
    platform = platform_factory(poll_interval=3600, lease_seconds=4, ca_bundle=tls.ca_path)
    try:
        account = make_account(platform, url=receiver.url)
        published = {publish_sample(platform, account.id, "sms", seed=n).id for n in range(3)}
        # As a claim whose commit went through while its answer was lost leaves them: leased
        # to a claim no worker holds, ending within the worker's own lease.
        with platform.db.write() as conn:
            conn.execute(
                update(deliveries).values(
                    claim_id="clm_lost",
                    claimed_by="gone",
                    lease_until=platform.clock.now() + timedelta(seconds=2),
                )
            )
        with ExitStack() as away:
            away.enter_context(table_away(platform, "endpoint_health"))
            async with running_worker(platform) as worker:
                await wait_for(lambda: worker.claims.lapse_at is not None)  # its claim failed
                away.close()
                # Its next claims find nothing due: the rows are still leased. Then it waits.
                await wait_for(lambda: len(receiver.received) == 3, timeout=30)
        assert {json.loads(r.body)["id"] for r in receiver.received} == published
    finally:
        await receiver.stop()
