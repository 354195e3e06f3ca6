"""A signing secret stored under another master key holds back its own endpoint only: the
others' deliveries go out, its attempt is retried (not failed), and rotating the secret — how
an operator replaces it — lets it go out again. (Before: every claim failed, for every account.)"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.signing import verify_callhook
from callhook.store import integrations as integration_store
from callhook.store.secretbox import SecretBox, decode_master_key, new_master_key
from callhook.store.tables import deliveries, endpoint_secrets, endpoints
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker


def _rows(platform: Platform, account_id: str) -> list[tuple[str, int, str | None]]:
    """(status, attempts, latest attempt's error message) of the account's deliveries."""
    with platform.db.read() as conn:
        rows = conn.execute(
            select(
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.attempt_error_message,
            ).where(deliveries.c.account_id == account_id)
        )
        return [(str(status), int(n), message) for status, n, message in rows]


async def test_only_its_endpoint_waits_and_a_rotation_frees_it(tmp_path: Path, tls: Tls) -> None:
    receiver = await Receiver(tls.server_context()).start()
    odd_receiver = await Receiver(tls.server_context()).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
        good = make_account(platform, url=receiver.url, name="Good")
        odd = make_account(platform, url=odd_receiver.url, name="Odd")
        other_box = SecretBox(decode_master_key(new_master_key()))
        with platform.db.write() as conn:
            odd_endpoint = conn.execute(
                select(endpoints.c.id).where(endpoints.c.account_id == odd.id)
            ).scalar_one()
            conn.execute(
                update(endpoint_secrets)
                .where(endpoint_secrets.c.endpoint_id == odd_endpoint)
                .values(secret_encrypted=other_box.encrypt("whsec_" + "A" * 43))
            )
        for seed in range(3):
            publish_sample(platform, odd.id, seed=seed)
            publish_sample(platform, good.id, seed=seed)
        async with running_worker(platform):
            await wait_for(lambda: [s for s, *_ in _rows(platform, good.id)] == ["delivered"] * 3)
            await wait_for(lambda: all(n == 1 for _, n, _ in _rows(platform, odd.id)))
        assert all(status == "pending" for status, *_ in _rows(platform, odd.id))
        assert all("cannot be decrypted" in (m or "") for *_, m in _rows(platform, odd.id))
        assert len(receiver.received) == 3
        assert odd_receiver.received == []

        # The operator rotates it: the unreadable one stops signing, the new one signs.
        with platform.db.write() as conn:
            fresh = integration_store.rotate_secret(
                conn, odd.id, now=clock.now(), box=platform.box, rng=platform.rng
            )
            active = integration_store.active_secrets(
                conn, odd.id, now=clock.now(), box=platform.box
            )
        assert [s.secret for s in active] == [fresh.secret]
        clock.advance(10)  # past the first retry (5 s, ±20 %)
        async with running_worker(platform) as worker:
            worker.wake()
            await wait_for(lambda: [s for s, *_ in _rows(platform, odd.id)] == ["delivered"] * 3)
        assert len(odd_receiver.received) == 3
        for got in odd_receiver.received:
            verify_callhook(got.headers, got.body, [fresh.secret], now=clock.now().timestamp())
    finally:
        await receiver.stop()
        await odd_receiver.stop()
