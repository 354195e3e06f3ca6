"""The endpoints store (``callhook.store.endpoints``) on both backends: scoping by account,
the per-account limit, duplicate URLs, vetting, the primary endpoint's rules, secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from callhook.core.clock import FakeClock
from callhook.core.retry import RetryPolicy
from callhook.errors import (
    DuplicateEndpointUrl,
    EndpointLimitReached,
    EndpointNotFound,
    InvalidRequest,
    PayloadInvalid,
    PrimaryEndpointDelete,
    PrimaryEndpointUrl,
    UnknownEvent,
    UnsafeURL,
)
from callhook.platform import Platform
from callhook.store import endpoints as endpoint_store
from callhook.store import events as event_store
from callhook.store.endpoint_secrets import MAX_SIGNING_SECRETS
from callhook.store.endpoints import Endpoint, EndpointState
from callhook.store.tables import deliveries, endpoint_secrets, endpoints
from tests.factories import make_account, publish_sample

PRIMARY_URL = "https://hooks.example.com/primary"


@pytest.fixture
def platform(platform_factory: Callable[..., Platform]) -> Platform:
    return platform_factory(clock=FakeClock(), max_endpoints_per_account=4)


def _create(platform: Platform, account_id: str, url: str, **kwargs: Any) -> Endpoint:
    kwargs.setdefault("subscribed_events", ["incoming_call_start"])
    with platform.db.write() as conn:
        return endpoint_store.create(
            conn,
            account_id,
            url=url,
            limit=platform.settings.max_endpoints_per_account,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
            **kwargs,
        )


def _count(platform: Platform) -> int:
    with platform.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(endpoints)).scalar_one())


def test_create_reads_back_and_lists_primary_first(platform: Platform) -> None:
    account = make_account(platform, url=PRIMARY_URL, events=["incoming_call_end"])
    made = _create(
        platform,
        account.id,
        "https://CRM.example.com/hooks",
        description="the CRM",
        retry_policy="none",
    )
    assert made.id.startswith("ep_")
    assert made.url == "https://crm.example.com/hooks"  # normalized
    assert (made.description, made.enabled, made.primary) == ("the CRM", True, False)
    assert made.subscribed_events == ("incoming_call_start",)
    assert made.retry_policy is RetryPolicy.NONE
    assert made.state is EndpointState.ACTIVE
    assert made.created_at == made.updated_at == platform.clock.now()
    platform.clock.advance(1)  # type: ignore[attr-defined]
    every = _create(platform, account.id, "https://dw.example.com/", subscribed_events=None)
    assert every.subscribed_events is None
    assert every.subscribes("voicemail")
    assert not made.subscribes("voicemail")
    with platform.db.read() as conn:
        listed = endpoint_store.list_for_account(conn, account.id)
        primary = endpoint_store.primary(conn, account.id)
        assert endpoint_store.get(conn, account.id, made.id) == made
    assert primary is not None
    assert primary.primary
    assert primary.url == PRIMARY_URL
    assert primary.subscribed_events == ("incoming_call_end",)
    assert [e.id for e in listed] == [primary.id, made.id, every.id]


def test_another_accounts_endpoint_is_not_found_like_an_unknown_one(platform: Platform) -> None:
    mine = make_account(platform, url=PRIMARY_URL)
    theirs = make_account(platform, url="https://hooks.example.com/theirs")
    theirs_ep = _create(platform, theirs.id, "https://other.example.com/")
    unknown = "ep_" + "0" * 26
    for endpoint_id in (theirs_ep.id, unknown, "ep_bad", "'; drop table endpoints"):
        with platform.db.write() as conn, pytest.raises(EndpointNotFound):
            endpoint_store.get(conn, mine.id, endpoint_id)
        with platform.db.write() as conn, pytest.raises(EndpointNotFound):
            endpoint_store.update(
                conn, mine.id, endpoint_id, enabled=False, now=platform.clock.now()
            )
        with platform.db.write() as conn, pytest.raises(EndpointNotFound):
            endpoint_store.delete_endpoint(conn, mine.id, endpoint_id)
        with platform.db.write() as conn, pytest.raises(EndpointNotFound):
            endpoint_store.rotate_secret(
                conn,
                mine.id,
                endpoint_id,
                now=platform.clock.now(),
                box=platform.box,
                rng=platform.rng,
            )
        with platform.db.read() as conn, pytest.raises(EndpointNotFound):
            endpoint_store.active_secrets(
                conn, mine.id, endpoint_id, now=platform.clock.now(), box=platform.box
            )
    with platform.db.read() as conn:
        assert endpoint_store.get(conn, theirs.id, theirs_ep.id).enabled  # untouched


def test_the_limit_counts_the_primary_endpoint_and_writes_nothing(platform: Platform) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    for n in range(3):
        _create(platform, account.id, f"https://h{n}.example.com/")
    before = _count(platform)
    with pytest.raises(EndpointLimitReached) as caught:
        _create(platform, account.id, "https://h9.example.com/")
    assert "4 endpoints" in caught.value.message
    assert caught.value.field == "url"
    assert _count(platform) == before
    other = make_account(platform)  # the limit is per account
    _create(platform, other.id, "https://h9.example.com/")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": PRIMARY_URL}, DuplicateEndpointUrl),
        ({"url": "https://HOOKS.example.com:443/primary"}, DuplicateEndpointUrl),
        ({"url": "http://hooks.example.com/"}, UnsafeURL),
        ({"url": "https://10.0.0.1/"}, UnsafeURL),
        ({"url": "https://localhost/"}, UnsafeURL),
        ({"url": "https://ok.example.com/", "subscribed_events": ["nope"]}, UnknownEvent),
        ({"url": "https://ok.example.com/", "retry_policy": "linear"}, InvalidRequest),
        ({"url": "https://ok.example.com/", "description": "x" * 501}, PayloadInvalid),
    ],
)
def test_bad_input_is_refused_before_any_write(
    platform: Platform, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    kwargs = dict(kwargs)  # the parameters are shared by both backends' runs
    before = _count(platform)
    with pytest.raises(error), platform.db.write() as conn:
        endpoint_store.create(
            conn,
            account.id,
            subscribed_events=kwargs.pop("subscribed_events", None),
            limit=20,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
            **kwargs,
        )
    assert _count(platform) == before


def test_update_changes_only_what_is_given(platform: Platform) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    made = _create(platform, account.id, "https://a.example.com/")
    platform.clock.advance(60)  # type: ignore[attr-defined]
    with platform.db.write() as conn:
        changed = endpoint_store.update(
            conn,
            account.id,
            made.id,
            url="https://b.example.com/",
            subscribed_events=["incoming_call_end", "voicemail"],
            enabled=False,
            now=platform.clock.now(),
        )
    assert changed.url == "https://b.example.com/"
    assert changed.subscribed_events == ("incoming_call_end", "voicemail")  # catalog order
    assert not changed.enabled
    assert changed.description == made.description
    assert changed.updated_at > made.updated_at
    assert changed.created_at == made.created_at
    with platform.db.write() as conn:
        with pytest.raises(DuplicateEndpointUrl):
            endpoint_store.update(
                conn, account.id, made.id, url=PRIMARY_URL, now=platform.clock.now()
            )
        every = endpoint_store.update(
            conn, account.id, made.id, subscribed_events=None, now=platform.clock.now()
        )
    assert every.subscribed_events is None


def test_the_primary_endpoints_url_and_existence_are_not_the_apis(platform: Platform) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    with platform.db.write() as conn:
        primary = endpoint_store.primary(conn, account.id)
        assert primary is not None
        with pytest.raises(PrimaryEndpointUrl):
            endpoint_store.update(
                conn, account.id, primary.id, url="https://x.example.com/", now=platform.clock.now()
            )
        with pytest.raises(PrimaryEndpointDelete):
            endpoint_store.delete_endpoint(conn, account.id, primary.id)
        moved = endpoint_store.set_primary_url(
            conn,
            account.id,
            "https://x.example.com/",
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
        )
    assert moved.id == primary.id
    assert moved.url == "https://x.example.com/"


def test_delete_takes_the_endpoints_deliveries_and_secrets_along(platform: Platform) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    extra = _create(platform, account.id, "https://a.example.com/")
    published = publish_sample(platform, account.id, "incoming_call_start")
    assert len(published.delivery_ids) == 2
    with platform.db.write() as conn:  # the primary one stops taking this event
        endpoint_store.update(
            conn,
            account.id,
            endpoint_store.primary(conn, account.id).id,  # type: ignore[union-attr]
            subscribed_events=["sms"],
            now=platform.clock.now(),
        )
    only_extra = publish_sample(platform, account.id, "incoming_call_start", seed=1)
    assert len(only_extra.delivery_ids) == 1
    with platform.db.write() as conn:
        endpoint_store.delete_endpoint(conn, account.id, extra.id)
    with platform.db.read() as conn:
        left = conn.execute(select(deliveries.c.endpoint_id)).scalars().all()
        secrets = conn.execute(
            select(func.count())
            .select_from(endpoint_secrets)
            .where(endpoint_secrets.c.endpoint_id == extra.id)
        ).scalar_one()
        primary = endpoint_store.primary(conn, account.id)
    assert primary is not None
    assert left == [primary.id]
    assert secrets == 0
    with platform.db.read() as conn:
        kept = event_store.get(conn, published.id)
        orphan = event_store.get(conn, only_extra.id)
    assert kept is not None
    assert kept.skip_reason is None  # still delivered to the primary endpoint
    assert orphan is not None
    assert orphan.skip_reason == "endpoint_deleted"


def test_each_endpoint_has_its_own_secret_and_rotation(platform: Platform) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    extra = _create(platform, account.id, "https://a.example.com/")
    now = platform.clock.now()
    with platform.db.write() as conn:
        [first] = endpoint_store.active_secrets(
            conn, account.id, extra.id, now=now, box=platform.box
        )
        assert first.secret.startswith("whsec_")
        assert first.secret != account.secret
        platform.clock.advance(1)  # type: ignore[attr-defined]
        now = platform.clock.now()
        new = endpoint_store.rotate_secret(
            conn, account.id, extra.id, now=now, box=platform.box, rng=platform.rng
        )
        both = endpoint_store.active_secrets(conn, account.id, extra.id, now=now, box=platform.box)
        primary = endpoint_store.primary(conn, account.id)
        assert primary is not None
        [unchanged] = endpoint_store.active_secrets(
            conn, account.id, primary.id, now=now, box=platform.box
        )
    assert [s.secret for s in both] == [new.secret, first.secret]
    assert both[1].expires_at == now + endpoint_store.ROTATION_OVERLAP
    assert unchanged.secret == account.secret


@pytest.mark.parametrize("rotations", [1, 2, 3, 12])
def test_rotations_keep_at_most_three_secrets_signing(platform: Platform, rotations: int) -> None:
    account = make_account(platform, url=PRIMARY_URL)
    extra = _create(platform, account.id, "https://a.example.com/")
    made = []
    with platform.db.write() as conn:
        for _ in range(rotations):
            platform.clock.advance(1)  # type: ignore[attr-defined]
            made.append(
                endpoint_store.rotate_secret(
                    conn,
                    account.id,
                    extra.id,
                    now=platform.clock.now(),
                    box=platform.box,
                    rng=platform.rng,
                ).secret
            )
        signing = endpoint_store.active_secrets(
            conn, account.id, extra.id, now=platform.clock.now(), box=platform.box
        )
    # The newest first: the current one and at most the two before it, whatever the count.
    assert len(signing) == min(rotations + 1, MAX_SIGNING_SECRETS)
    assert [s.secret for s in signing][: min(rotations, 3)] == made[::-1][:3]
