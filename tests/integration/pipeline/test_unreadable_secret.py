"""A signing secret stored under another master key holds back its own endpoint only: the
others' deliveries go out, its deliveries stay pending with nothing spent on them (whatever the
retry policy), and rotating the secret — how an operator replaces it — lets them go out, signed
with the new one. A rotated-out secret no key here reads does not hold anything back.
(Before: every claim failed, for every account.)"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.signing import HEADER_SIGNATURE, verify_callhook
from callhook.store import integrations as integration_store
from callhook.store.secretbox import SecretBox, decode_master_key, new_master_key
from callhook.store.tables import deliveries, endpoint_secrets, endpoints
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker

OTHER_BOX = SecretBox(decode_master_key(new_master_key()))


def _rows(platform: Platform, account_id: str) -> list[tuple[str, int]]:
    """(status, attempts) of the account's deliveries."""
    with platform.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.status, deliveries.c.attempts).where(
                deliveries.c.account_id == account_id
            )
        )
        return [(str(status), int(n)) for status, n in rows]


def _store_under_another_key(platform: Platform, account_id: str, *, current: bool) -> None:
    """The account's current secret (or, after a rotation, its rotated-out one) re-encrypted
    under a key this platform does not have."""
    with platform.db.write() as conn:
        endpoint = conn.execute(
            select(endpoints.c.id).where(endpoints.c.account_id == account_id)
        ).scalar_one()
        which = (
            endpoint_secrets.c.expires_at.is_(None)
            if current
            else endpoint_secrets.c.expires_at.is_not(None)
        )
        conn.execute(
            update(endpoint_secrets)
            .where(endpoint_secrets.c.endpoint_id == endpoint, which)
            .values(secret_encrypted=OTHER_BOX.encrypt("whsec_" + "A" * 43))
        )


async def test_only_its_endpoint_waits_and_a_rotation_frees_it(tmp_path: Path, tls: Tls) -> None:
    receiver = await Receiver(tls.server_context()).start()
    odd_receiver = await Receiver(tls.server_context()).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
        good = make_account(platform, url=receiver.url, name="Good")
        # One attempt only: had the held-back deliveries spent one, they would be failed now.
        odd = make_account(platform, url=odd_receiver.url, name="Odd", retry_policy="none")
        _store_under_another_key(platform, odd.id, current=True)
        for seed in range(3):
            publish_sample(platform, odd.id, seed=seed)
            publish_sample(platform, good.id, seed=seed)
        async with running_worker(platform) as worker:
            await wait_for(lambda: [s for s, _ in _rows(platform, good.id)] == ["delivered"] * 3)
            worker.wake()
            await wait_for(lambda: worker.attempted >= 3)
        assert _rows(platform, odd.id) == [("pending", 0)] * 3
        assert odd_receiver.received == []

        # The operator is told to rotate it, and does (the secret's page, the API and the
        # CLI leave the unreadable one out).
        env = {
            "CALLHOOK_DATABASE_URL": platform.settings.database_url,
            "CALLHOOK_MASTER_KEY": platform.settings.master_key,
        }
        shown = CliRunner().invoke(app, ["integration", "secret", odd.id], env=env)
        assert shown.exit_code == 0, shown.output
        assert "rotate it with --rotate" in " ".join(shown.output.split())
        with platform.db.write() as conn:
            assert (
                integration_store.active_secrets(conn, odd.id, now=clock.now(), box=platform.box)
                == []
            )
            fresh = integration_store.rotate_secret(
                conn, odd.id, now=clock.now(), box=platform.box, rng=platform.rng
            )
        async with running_worker(platform):
            await wait_for(lambda: [s for s, _ in _rows(platform, odd.id)] == ["delivered"] * 3)
        assert len(odd_receiver.received) == 3
        for got in odd_receiver.received:
            verify_callhook(got.headers, got.body, [fresh.secret], now=clock.now().timestamp())
    finally:
        await receiver.stop()
        await odd_receiver.stop()


async def test_an_unreadable_rotated_out_secret_holds_nothing_back(
    tmp_path: Path, tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    clock = FakeClock()
    try:
        platform = make_platform(tmp_path, clock=clock, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        with platform.db.write() as conn:
            current = integration_store.rotate_secret(
                conn, account.id, now=clock.now(), box=platform.box, rng=platform.rng
            )
        _store_under_another_key(platform, account.id, current=False)
        publish_sample(platform, account.id)
        async with running_worker(platform):
            await wait_for(lambda: _rows(platform, account.id) == [("delivered", 1)])
        [got] = receiver.received
        verify_callhook(got.headers, got.body, [current.secret], now=clock.now().timestamp())
        # Signed with the current secret alone: one signature, not a blank for the other.
        signature = next(v for k, v in got.headers.items() if k.lower() == HEADER_SIGNATURE.lower())
        assert signature.count("sha256=") == 1
    finally:
        await receiver.stop()
