"""``Claims.claim`` on a real SQLite file: the rows are stamped in the write transaction and
what sending needs is read after it commits, so a read that fails must give the rows back."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from callhook.core.clock import FakeClock
from callhook.delivery.claims import Claims
from callhook.errors import StoreError
from callhook.platform import Platform
from callhook.store.secretbox import SecretBox
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform, publish_sample


def _claims(platform: Platform, clock: FakeClock, box: SecretBox) -> Claims:
    return Claims(
        platform.db, platform.settings, clock=clock, rng=random.Random(7), box=box, worker_id="w"
    )


def _leased(platform: Platform) -> set[str]:
    with platform.db.read() as conn:
        return set(
            conn.execute(
                select(deliveries.c.id).where(deliveries.c.claim_id.is_not(None))
            ).scalars()
        )


def test_a_claim_whose_jobs_cannot_be_read_gives_its_rows_back(tmp_path: Path) -> None:
    """A worker started with another master key cannot decrypt the signing secrets: its claim
    raises the store's error and leaves no row leased to it, so the right worker takes them
    at once rather than after the lease."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    published = {publish_sample(platform, account.id, "sms", seed=n).delivery_id for n in range(5)}

    with pytest.raises(StoreError, match="cannot be decrypted"):
        _claims(platform, clock, SecretBox(b"k" * 32)).claim(10, set())
    assert _leased(platform) == set()

    jobs = _claims(platform, clock, platform.box).claim(10, set())
    assert {j.delivery_id for j in jobs} == published
    assert all(j.secrets and j.body for j in jobs)
    assert _leased(platform) == published
