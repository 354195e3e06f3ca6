"""``Claims.claim`` on a real SQLite file: the rows are stamped in the write transaction and
what sending needs is read after it commits, so a read that fails must give the rows back."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from callhook.core.clock import FakeClock
from callhook.core.throttle import Caps
from callhook.delivery.claims import UNREADABLE_PAUSE, Claims
from callhook.platform import Platform
from callhook.store import endpoint_health
from callhook.store import endpoints as endpoint_store
from callhook.store.queue import AttemptResult
from callhook.store.secretbox import SecretBox
from callhook.store.tables import alerts as alerts_table
from callhook.store.tables import deliveries
from tests.factories import make_account, make_platform, publish_sample
from tests.support.outage import table_away


def _claims(
    platform: Platform, clock: FakeClock, box: SecretBox, on_lapse: Callable[[], None] | None = None
) -> Claims:
    return Claims(
        platform.db,
        platform.settings,
        clock=clock,
        rng=random.Random(7),
        box=box,
        worker_id="w",
        on_lapse=on_lapse,
    )


def _leased(platform: Platform) -> set[str]:
    with platform.db.read() as conn:
        return set(
            conn.execute(
                select(deliveries.c.id).where(deliveries.c.claim_id.is_not(None))
            ).scalars()
        )


def test_a_claim_whose_jobs_cannot_be_read_gives_its_rows_back(tmp_path: Path) -> None:
    """A worker whose master key cannot decrypt an endpoint's current signing secret gives
    that endpoint's rows back at once, spends nothing on them (no attempt), and leaves the
    endpoint out of its claims for ``UNREADABLE_PAUSE``: a worker with the right key takes
    them at once rather than after the lease."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    published = {publish_sample(platform, account.id, "sms", seed=n).delivery_id for n in range(5)}

    wrong = _claims(platform, clock, SecretBox(b"k" * 32))
    assert wrong.claim(10, set()) == []
    assert _leased(platform) == set()
    assert wrong.look_again_in(clock.now()) <= UNREADABLE_PAUSE.total_seconds()
    with platform.db.read() as conn:  # nothing spent on them
        assert set(conn.execute(select(deliveries.c.attempts)).scalars()) == {0}

    jobs = _claims(platform, clock, platform.box).claim(10, set())
    assert {j.delivery_id for j in jobs} == published
    assert all(j.secrets and j.body for j in jobs)
    assert _leased(platform) == published


def test_a_failed_claim_sets_a_wake_up_one_lease_later_which_a_claim_after_it_clears(
    tmp_path: Path,
) -> None:
    """A failed statement may have left rows leased (a commit whose answer was lost): nothing
    announces when that lease runs out, so the claims look again one lease after the failure,
    and forget it once a claim has started past that time."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, lease_seconds=30)
    account = make_account(platform, url="https://receiver.example/hook")
    publish_sample(platform, account.id, "sms")
    claims = _claims(platform, clock, platform.box)
    assert (claims.lapse_at, claims.look_again_in(clock.now())) == (None, math.inf)

    with table_away(platform, "endpoint_health"), pytest.raises(DBAPIError):
        claims.claim(10, set())
    assert claims.lapse_at == clock.now() + timedelta(seconds=30)
    clock.advance(10)
    assert claims.look_again_in(clock.now()) == 20
    assert len(claims.claim(10, set())) == 1
    assert claims.look_again_in(clock.now()) == 20  # claimed before the lapse: remembered
    clock.advance(20)
    assert claims.look_again_in(clock.now()) == 0.002  # due: look at once
    assert claims.claim(10, set()) == []
    assert claims.look_again_in(clock.now()) == math.inf
    assert claims.lapse_at is None


def test_lapse_from_never_moves_the_wake_up_earlier_and_tells_the_worker_each_time(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, lease_seconds=30)
    told: list[None] = []
    claims = _claims(platform, clock, platform.box, on_lapse=lambda: told.append(None))
    later = clock.now() + timedelta(seconds=10)
    claims.lapse_from(later)
    claims.lapse_from(clock.now())  # an earlier drop cannot shorten a later lease
    assert claims.lapse_at == later + timedelta(seconds=30)
    assert len(told) == 2


def test_a_worker_that_cannot_read_the_secret_spends_none_of_its_tokens(tmp_path: Path) -> None:
    """The rows go back in the claim's own transaction, before the token bucket (or a failing
    endpoint's probe) is charged: a worker with the right key claiming next gets them all."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    with platform.db.write() as conn:
        endpoint = endpoint_store.primary(conn, account.id)
        assert endpoint is not None
        endpoint_health.set_limits(
            conn, endpoint.id, account.id, rate_limit=10, max_in_flight=None, caps=Caps()
        )
    for n in range(5):
        publish_sample(platform, account.id, "sms", seed=n)
    wrong = _claims(platform, clock, SecretBox(b"k" * 32))
    assert wrong.claim(10, set()) == []
    assert wrong.cut_short == {endpoint.id}  # the loop claims again at once, leaving it out
    right = _claims(platform, clock, platform.box)
    assert len(right.claim(10, set())) == 5  # a burst of 5 tokens, untouched by the first


@pytest.mark.parametrize(("error_class", "alerted"), [("connect_error", True), ("expired", False)])
def test_only_a_delivery_that_failed_for_good_raises_an_alert(
    tmp_path: Path, error_class: str, alerted: bool
) -> None:
    """``delivery.exhausted`` is for a delivery that failed for good; one past its endpoint's
    maximum age expired as the customer asked (issue 14), and says so in its state only."""
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock)
    account = make_account(platform, url="https://receiver.example/hook")
    publish_sample(platform, account.id, "sms")
    claims = _claims(platform, clock, platform.box)
    [job] = claims.claim(10, set())
    result = AttemptResult(
        job=job,
        started_at=clock.now(),
        duration_ms=1.0,
        delivered=False,
        status_code=None,
        response_body=None,
        error_class=error_class,
        error_message="not sent" if error_class == "expired" else "refused",
        next_attempt_at=None,
    )
    assert claims.complete([result]) == []
    with platform.db.read() as conn:
        kinds = list(conn.execute(select(alerts_table.c.kind)).scalars())
        status = conn.execute(select(deliveries.c.status)).scalar_one()
    # (One outbox row per way it is sent: the account's webhook, its users' mail.)
    assert set(kinds) == ({"delivery.exhausted"} if alerted else set())
    assert status == ("expired" if error_class == "expired" else "failed")
