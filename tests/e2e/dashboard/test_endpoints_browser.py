"""Issue 13's "done when", in real headless Chromium: a customer adds a second endpoint in the
dashboard, picks different events for it, and each endpoint (a real HTTPS receiver) receives only
its own events, signed with its own secret.

Screenshots go to a temporary folder (and to ``$CALLHOOK_SCREENSHOT_DIR/journey`` when set).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from callhook.errors import EndpointNotFound
from callhook.publish import parse_event
from callhook.signing import WebhookVerificationError, verify_callhook, verify_standard
from callhook.store import accounts as account_store
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store import users as user_store
from tests.e2e.dashboard.servers import (
    CHROMIUM_ARGS,
    ReceiverThread,
    ServerThread,
    ensure_chromium,
    eventually,
    serving,
)
from tests.e2e.dashboard.test_dashboard_browser import Shots
from tests.factories import sample_event
from tests.support.receiver import Received, Tls

pytestmark = pytest.mark.e2e

EMAIL = "owner@acme.example"
PASSWORD = "a long enough password"
#: The primary endpoint (the CRM) takes the starts and SMS; the help desk the ends and voicemail.
PRIMARY_EVENTS = ("incoming_call_start", "sms")
DESK_EVENTS = ("incoming_call_end", "voicemail")
#: Published once each: the last one goes to neither endpoint.
PUBLISHED = ("incoming_call_start", "incoming_call_end", "sms", "voicemail", "outgoing_call_end")


@pytest.fixture
def receivers(tls: Tls) -> Iterator[tuple[ReceiverThread, ReceiverThread]]:
    crm, desk = ReceiverThread(tls).start(), ReceiverThread(tls).start()
    try:
        yield crm, desk
    finally:
        crm.stop()
        desk.stop()


@pytest.fixture
def server(tmp_path: Path, tls: Tls) -> Iterator[ServerThread]:
    with serving(tmp_path, tls.ca_path) as running:
        yield running


def _account(server: ServerThread, crm_url: str) -> str:
    """An account whose primary endpoint (set up as before endpoints existed) is the CRM."""
    platform = server.platform
    now = platform.clock.now()
    with platform.db.write() as conn:
        account = account_store.create(conn, name="Acme Telecom", now=now, rng=platform.rng)
        user_store.create(
            conn, account_id=account.id, email=EMAIL, password=PASSWORD, now=now, rng=platform.rng
        )
        integration_store.set_url(
            conn, account.id, crm_url, now=now, box=platform.box, rng=platform.rng
        )
        integration_store.set_subscriptions(conn, account.id, list(PRIMARY_EVENTS), now=now)
    return account.id


def _received(receiver: ReceiverThread) -> list[Received]:
    assert receiver.receiver is not None
    return list(receiver.receiver.received)


def _events(receiver: ReceiverThread) -> list[str]:
    return sorted(r.headers["X-Webhook-Event"] for r in _received(receiver))


def _delivered(server: ServerThread, account_id: str) -> int:
    with server.platform.db.read() as conn:
        rows = delivery_store.list_deliveries(conn, account_id=account_id, status="delivered")
    return len(rows)


def _signed_by(received: Received, secret: str) -> bool:
    try:
        verify_callhook(received.headers, received.body, [secret], now=time.time())
        verify_standard(received.headers, received.body, [secret], now=time.time())
    except WebhookVerificationError:
        return False
    return True


def _add_endpoint(page: Page, base: str, url: str) -> None:
    page.goto(f"{base}/dashboard/endpoints")
    page.get_by_role("link", name="Add endpoint").click()
    expect(page.get_by_role("heading", name="Add an endpoint")).to_be_visible()
    page.get_by_label("Endpoint URL").fill(url)
    page.get_by_label("Description").fill("Help desk")
    page.get_by_role("button", name="Select none").click()
    for event in DESK_EVENTS:
        page.locator(f"#ev-{event}").check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("status")).to_have_text("Endpoint added. Its signing secret is below.")
    expect(page.get_by_role("heading", name="Help desk")).to_be_visible()
    for event in DESK_EVENTS:
        expect(page.locator(f"#ev-{event}")).to_be_checked()
    expect(page.locator("#ev-incoming_call_start")).not_to_be_checked()


def test_a_second_endpoint_receives_only_its_own_events(
    tmp_path: Path, server: ServerThread, receivers: tuple[ReceiverThread, ReceiverThread]
) -> None:
    crm, desk = receivers
    account_id = _account(server, crm.url)
    base = server.base
    shots = Shots(tmp_path / "screenshots")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{base}/dashboard/signin")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        # Typed with a trailing slash, a page is still the page (the API would say 404).
        page.goto(f"{base}/dashboard/endpoints/?from=typed")
        assert page.url == f"{base}/dashboard/endpoints?from=typed"
        expect(page.get_by_role("heading", name="Endpoints", exact=True)).to_be_visible()
        page.goto(f"{base}/dashboard/")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        # --- The customer adds the help desk with other events ------------------------------
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Endpoints").click()
        expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
        _add_endpoint(page, base, desk.url)
        shots.take(page, "endpoint-added")

        # --- Its own secret: revealed on its page, not the primary endpoint's -----------------
        page.get_by_role("link", name="Reveal or rotate the signing secret").click()
        page.get_by_role("button", name="Reveal secret").click()
        desk_secret = page.locator("[data-secret=current]").input_value()
        with server.platform.db.read() as conn:
            [crm_secret] = integration_store.active_secrets(
                conn, account_id, now=server.platform.clock.now(), box=server.platform.box
            )
            desk_endpoint = endpoint_store.list_for_account(conn, account_id)[1]
        assert desk_secret.startswith("whsec_")
        assert desk_secret != crm_secret.secret
        assert desk_endpoint.subscribed_events == DESK_EVENTS

        # --- Events are published: each endpoint receives exactly its own --------------------
        for seed, event in enumerate(PUBLISHED):
            item = sample_event(event, seed=seed, account_id=account_id)
            server.platform.publisher.publish([parse_event(item)])
        eventually(lambda: len(_received(crm)) == 2 and len(_received(desk)) == 2, timeout=30)
        assert _events(crm) == sorted(PRIMARY_EVENTS)
        assert _events(desk) == sorted(DESK_EVENTS)
        for received in _received(crm):
            assert _signed_by(received, crm_secret.secret)
            assert not _signed_by(received, desk_secret)
        for received in _received(desk):
            assert _signed_by(received, desk_secret)
            assert not _signed_by(received, crm_secret.secret)
        # One event each, not two copies (the same event never goes twice to one endpoint).
        ids = [orjson.loads(r.body)["id"] for r in _received(crm) + _received(desk)]
        assert len(set(ids)) == 4

        # --- The list shows both healthy; each endpoint's page its own deliveries ------------
        # (The receivers have the requests; the worker records the answers just after.)
        eventually(lambda: _delivered(server, account_id) == 4, timeout=30)
        page.goto(f"{base}/dashboard/endpoints")
        rows = page.locator("tr[data-endpoint]")
        expect(rows).to_have_count(2)
        for i in range(2):
            expect(rows.nth(i).locator("[data-health]")).to_have_text("healthy")
        expect(rows.nth(1)).to_contain_text("Help desk")
        expect(rows.nth(1)).to_contain_text("2 delivered · 0 failed")
        shots.take(page, "endpoints-list")
        rows.nth(1).get_by_role("link", name="Edit").click()
        recent = page.locator("section", has_text="Recent deliveries")
        expect(recent.locator("tbody tr")).to_have_count(2)
        for event in DESK_EVENTS:
            expect(recent).to_contain_text(event)

        # --- A test event from its page goes to the help desk only ----------------------------
        page.get_by_role("button", name="Send test event").click()
        expect(page.locator("#test-outcome")).to_contain_text("Delivered")
        eventually(lambda: len(_received(desk)) == 3)
        assert _received(desk)[-1].headers["X-Webhook-Event"] == "test"
        assert len(_received(crm)) == 2

        # --- Disabled, it receives nothing more; deleted after confirmation, it is gone -------
        page.goto(f"{base}/dashboard/endpoints")
        page.get_by_role("button", name="Disable Help desk").click()
        expect(page.get_by_role("status")).to_have_text("Endpoint disabled.")
        item = sample_event("voicemail", seed=50, account_id=account_id)
        server.platform.publisher.publish([parse_event(item)])
        page.get_by_role("link", name="Delete Help desk").click()
        expect(page.get_by_role("heading", name="Delete this endpoint?")).to_be_visible()
        shots.take(page, "endpoint-delete")
        page.get_by_role("button", name="Delete endpoint").click()
        expect(page.get_by_role("status")).to_have_text("Endpoint deleted.")
        expect(page.locator("tr[data-endpoint]")).to_have_count(1)
        browser.close()
    assert len(_received(desk)) == 3
    with server.platform.db.read() as conn, pytest.raises(EndpointNotFound):
        endpoint_store.get(conn, account_id, desk_endpoint.id)
