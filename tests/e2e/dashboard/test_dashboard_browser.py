"""The dashboard in real headless Chromium against a real server, worker and HTTPS receiver.

One scenario, as a new customer would go through it: sign in, point the integration at an
endpoint, send the test event, rotate the secret, watch a failure and recover, manage a token.
Screenshots of every step go to a temporary folder (and to ``$CALLHOOK_SCREENSHOT_DIR/journey``
when set; ``docs/screenshots/`` comes from ``test_layout.py``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from callhook.signing import verify_callhook, verify_standard
from callhook.store import accounts as account_store
from callhook.store import users as user_store
from tests.e2e.dashboard.servers import (
    CHROMIUM_ARGS,
    ReceiverThread,
    ServerThread,
    ensure_chromium,
    eventually,
    serving,
)
from tests.factories import sample_event
from tests.support.receiver import Received, Tls

EMAIL = "owner@acme.example"
PASSWORD = "a long enough password"


@pytest.fixture
def receiver(tls: Tls) -> Iterator[ReceiverThread]:
    thread = ReceiverThread(tls).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def server(tmp_path: Path, tls: Tls) -> Iterator[ServerThread]:
    with serving(tmp_path, tls.ca_path) as running:
        yield running


class Shots:
    """Saves a screenshot of each page visited."""

    def __init__(self, folder: Path) -> None:
        self.folders = [folder]
        extra = os.environ.get("CALLHOOK_SCREENSHOT_DIR")
        if extra:  # beside the layout test's page-by-width set (test_layout.py)
            self.folders.append(Path(extra) / "journey")
        for f in self.folders:
            f.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, page: Page, name: str, *, full_page: bool = True) -> None:
        for folder in self.folders:
            path = folder / f"{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            self.taken.append(path)


def _create_user(server: ServerThread) -> str:
    platform = server.platform
    now = platform.clock.now()
    with platform.db.write() as conn:
        account = account_store.create(conn, name="Acme Telecom", now=now, rng=platform.rng)
        user_store.create(
            conn, account_id=account.id, email=EMAIL, password=PASSWORD, now=now, rng=platform.rng
        )
    return account.id


def _last(receiver: ReceiverThread) -> Received:
    assert receiver.receiver is not None
    return receiver.receiver.received[-1]


def _count(receiver: ReceiverThread) -> int:
    assert receiver.receiver is not None
    return len(receiver.receiver.received)


def _nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _send_test_event(page: Page) -> None:
    """From wherever the page is: via the overview's button (the settings page has one too)."""
    if page.get_by_role("button", name="Send test event").count() == 0:
        _nav(page, "Overview")
    page.get_by_role("button", name="Send test event").first.click()
    page.wait_for_url(re.compile(r"/dashboard/test/dlv_"))


def test_customer_journey_in_a_real_browser(
    tmp_path: Path, server: ServerThread, receiver: ReceiverThread
) -> None:
    account_id = _create_user(server)
    shots = Shots(tmp_path / "screenshots")
    base = server.base
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())

        # --- Sign in ------------------------------------------------------------------------
        page.goto(f"{base}/dashboard/webhook")
        expect(page).to_have_url(re.compile(r"/dashboard/signin\?next=/dashboard/webhook"))
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
        page.get_by_label("Password").fill(PASSWORD)
        shots.take(page, "signin")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/dashboard/webhook")

        # --- Webhook settings: a bad URL first, then the real receiver ------------------------
        page.get_by_label("Endpoint URL").fill("https://exa mple.com/hook")
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#url-error")).to_contain_text("must not contain spaces")
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_role("button", name="Select none").click()
        for event in ("incoming_call_start", "incoming_call_end", "voicemail", "sms"):
            page.locator(f"#ev-{event}").check()
        page.get_by_label("None: one attempt per event, as SIPSIM does").check()
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status")).to_have_text("Webhook settings saved.")
        expect(page.locator("#ev-voicemail")).to_be_checked()
        expect(page.locator("#ev-outgoing_call_start")).not_to_be_checked()
        shots.take(page, "webhook-settings")

        # --- Send the test event: it reaches the receiver and the page --------------------------
        _send_test_event(page)
        expect(page.locator("#test-outcome")).to_contain_text(
            "Delivered: your endpoint answered HTTP 200"
        )
        eventually(lambda: _count(receiver) == 1)
        first = _last(receiver)
        assert first.headers["X-Webhook-Event"] == "test"
        sent = page.locator("#request-sent").inner_text()
        assert f"X-Webhook-Signature: {first.headers['X-Webhook-Signature']}" in sent
        assert orjson.loads(first.body)["pbx_id"] in sent
        expect(page.locator("#status-code")).to_have_text("200")
        expect(page.locator("#response-excerpt")).to_contain_text('"received": true')
        shots.take(page, "test-event")

        # --- Signing secret: reveal, then rotate; the receiver accepts both --------------------
        _nav(page, "Signing secret")
        page.get_by_role("button", name="Reveal secret").click()
        old_secret = page.locator("[data-secret=current]").input_value()
        verify_callhook(first.headers, first.body, [old_secret], now=time.time())
        page.get_by_role("button", name="Rotate secret").click()
        expect(page.get_by_role("status")).to_contain_text(
            "keeps signing alongside it for 24 hours"
        )
        new_secret = page.locator("[data-secret=current]").input_value()
        assert page.locator("[data-secret=previous]").input_value() == old_secret
        assert new_secret != old_secret
        shots.take(page, "signing-secret")
        _send_test_event(page)
        expect(page.locator("#test-outcome")).to_contain_text("Delivered")
        eventually(lambda: _count(receiver) == 2)
        rotated = _last(receiver)
        for secret in (old_secret, new_secret):
            verify_callhook(rotated.headers, rotated.body, [secret], now=time.time())
            verify_standard(rotated.headers, rotated.body, [secret], now=time.time())
        assert rotated.headers["X-Webhook-Signature"].count("sha256=") == 2
        assert rotated.headers["webhook-signature"].count("v1,") == 2

        # --- The endpoint fails: the test page says why, the overview shows the banner ----------
        receiver.status = 500
        _send_test_event(page)
        expect(page.locator("#test-outcome")).to_contain_text("Failed: non-2xx status (HTTP 500)")
        expect(page.locator("#test-outcome .hint")).to_contain_text("not with a 2xx status")
        eventually(lambda: _count(receiver) == 3)
        shots.take(page, "test-event-failed")
        _nav(page, "Overview")
        banner = page.locator(".banner")
        expect(banner).to_contain_text("failing since")
        expect(banner).to_contain_text("1 consecutive failure, last error: HTTP 500")
        expect(page.locator("#success-rate")).to_have_text("66.7 %")
        shots.take(page, "overview-failing")

        # --- Fix it and redeliver ---------------------------------------------------------------
        receiver.status = 200
        _nav(page, "Deliveries")
        page.get_by_label("Status").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(1)
        shots.take(page, "deliveries")
        rows.first.get_by_role("link").click()
        expect(page.locator("#delivery-status")).to_have_text("failed")
        page.get_by_role("button", name="Redeliver").click()
        expect(page.get_by_role("status")).to_contain_text("Queued for redelivery")
        eventually(lambda: _count(receiver) == 4)
        again = _last(receiver)
        assert again.headers["X-Webhook-Attempt"] == "2"
        assert orjson.loads(again.body) == orjson.loads(_received_body(receiver, 2))

        def delivered() -> bool:
            page.reload()
            return page.locator("#delivery-status").inner_text() == "delivered"

        eventually(delivered)
        expect(page.locator("details.attempt")).to_have_count(2)
        shots.take(page, "delivery-detail")
        _nav(page, "Overview")
        expect(page.locator(".banner")).to_have_count(0)
        shots.take(page, "overview")

        # --- API tokens: create, use, revoke ------------------------------------------------------
        _nav(page, "API tokens")
        page.get_by_label("Name").fill("CRM sync")
        page.locator("#scope-events\\.write").check()
        page.get_by_label("Expires after").select_option("30")
        page.get_by_role("button", name="Create token").click()
        token = page.locator("#new-token").input_value()
        assert token.startswith("chk_")
        expect(page.get_by_role("button", name="Copy")).to_be_visible()
        shots.take(page, "tokens")
        payload = sample_event("sms", seed=5, account_id=account_id)
        auth = {"Authorization": f"Bearer {token}"}
        before = httpx.post(f"{base}/internal/v1/events", json=payload, headers=auth)
        assert before.status_code == 202, before.text
        page.goto(f"{base}/dashboard/tokens")  # plaintext gone; the list has prefix and last use
        expect(page.locator("#new-token")).to_have_count(0)
        row = page.locator("tr", has_text="CRM sync")
        expect(row).to_contain_text(token[:12])
        assert "never" not in row.locator("td").nth(5).inner_text()
        row.get_by_role("button", name="Revoke CRM sync").click()
        expect(page.get_by_role("status")).to_contain_text("Token revoked")
        after = httpx.post(f"{base}/internal/v1/events", json=payload, headers=auth)
        assert after.status_code == 401

        # --- Phone-sized: the overview still reads ------------------------------------------------
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.add_cookies(context.cookies())  # type: ignore[arg-type]
        mobile = phone.new_page()
        mobile.goto(f"{base}/dashboard")
        expect(mobile.get_by_role("heading", name="Overview")).to_be_visible()
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        shots.take(mobile, "overview-phone")

        # --- Sign out -----------------------------------------------------------------------------
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_have_text("You have signed out.")
        page.goto(f"{base}/dashboard/tokens")
        expect(page).to_have_url(re.compile(r"/dashboard/signin"))
        browser.close()
    assert len(shots.taken) >= 10


def _received_body(receiver: ReceiverThread, index: int) -> bytes:
    assert receiver.receiver is not None
    return receiver.receiver.received[index].body
