"""Two endpoints of one account, each with its own events and secret, over real HTTPS
(issue 13): each receives exactly its events, signed with its own secret only."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from callhook.platform import Platform
from callhook.publish import send_test_event
from callhook.signing import InvalidSignature, verify_callhook, verify_standard
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.worker import running_worker


def _secret(platform: Platform, account_id: str, endpoint_id: str) -> str:
    with platform.db.read() as conn:
        [current] = endpoint_store.active_secrets(
            conn, account_id, endpoint_id, now=platform.clock.now(), box=platform.box
        )
    return current.secret


def _ids(receiver: Receiver) -> list[tuple[str, str]]:
    out = []
    for got in receiver.received:
        body = orjson.loads(got.body)
        out.append((body["event"], body["id"]))
    return sorted(out)


async def test_each_endpoint_receives_its_own_events_signed_with_its_own_secret(
    tmp_path: Path, tls: Tls
) -> None:
    helpdesk = await Receiver(tls.server_context()).start()
    crm = await Receiver(tls.server_context()).start()
    try:
        platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
        account = make_account(
            platform, url=helpdesk.url, events=["incoming_call_start", "incoming_call_end"]
        )
        with platform.db.write() as conn:
            second = endpoint_store.create(
                conn,
                account.id,
                url=crm.url,
                subscribed_events=["sms", "incoming_call_end"],
                limit=platform.settings.max_endpoints_per_account,
                allow_unsafe=True,  # the receivers listen on loopback
                now=platform.clock.now(),
                box=platform.box,
                rng=platform.rng,
            )
            primary = endpoint_store.primary(conn, account.id)
        assert primary is not None
        crm_secret = _secret(platform, account.id, second.id)
        assert crm_secret != account.secret

        start = publish_sample(platform, account.id, "incoming_call_start", seed=1)
        sms = publish_sample(platform, account.id, "sms", seed=2)
        end = publish_sample(platform, account.id, "incoming_call_end", seed=3)
        voicemail = publish_sample(platform, account.id, "voicemail", seed=4)
        assert len(start.delivery_ids) == len(sms.delivery_ids) == 1
        assert len(end.delivery_ids) == 2
        assert voicemail.delivery_ids == ()
        assert voicemail.skip_reason == "not_subscribed"
        async with running_worker(platform):
            await wait_for(lambda: len(helpdesk.received) == 2 and len(crm.received) == 2)
    finally:
        await helpdesk.stop()
        await crm.stop()

    assert _ids(helpdesk) == sorted(
        [("incoming_call_start", start.id), ("incoming_call_end", end.id)]
    )
    assert _ids(crm) == sorted([("sms", sms.id), ("incoming_call_end", end.id)])
    for receiver, own, other in (
        (helpdesk, account.secret, crm_secret),
        (crm, crm_secret, account.secret),
    ):
        for got in receiver.received:
            verify_callhook(got.headers, got.body, [own], now=time.time())
            verify_standard(got.headers, got.body, [own], now=time.time())
            with pytest.raises(InvalidSignature):
                verify_callhook(got.headers, got.body, [other], now=time.time())
    with platform.db.read() as conn:
        by_endpoint = {
            delivery_store.get(conn, d).endpoint_id: delivery_store.get(conn, d).status
            for d in end.delivery_ids
        }
    assert by_endpoint == {primary.id: "delivered", second.id: "delivered"}


async def test_the_spec_002_test_event_goes_to_the_primary_endpoint_only(
    tmp_path: Path, tls: Tls
) -> None:
    primary_receiver = await Receiver(tls.server_context()).start()
    other = await Receiver(tls.server_context()).start()
    try:
        platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
        account = make_account(platform, url=primary_receiver.url)
        with platform.db.write() as conn:
            second = endpoint_store.create(
                conn,
                account.id,
                url=other.url,
                subscribed_events=None,
                limit=20,
                allow_unsafe=True,
                now=platform.clock.now(),
                box=platform.box,
                rng=platform.rng,
            )
        to_primary = send_test_event(
            platform.publisher, account_id=account.id, now=platform.clock.now()
        )
        to_second = send_test_event(
            platform.publisher,
            account_id=account.id,
            now=platform.clock.now(),
            endpoint_id=second.id,
        )
        assert len(to_primary.delivery_ids) == len(to_second.delivery_ids) == 1
        async with running_worker(platform):
            await wait_for(lambda: len(primary_receiver.received) == len(other.received) == 1)
    finally:
        await primary_receiver.stop()
        await other.stop()
    assert _ids(primary_receiver) == [("test", to_primary.id)]
    assert _ids(other) == [("test", to_second.id)]
