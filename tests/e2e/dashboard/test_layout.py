"""Every dashboard page fits every screen: 390 (phone), 768 (tablet), 1280 and 1920 px wide.

Real Chromium against a real server, worker and HTTPS receiver, with data as long as the forms
and the ingest API allow (200-character names and URLs, 128-character pbx_ids, every event name,
a failing endpoint). A page fails when the document is wider than the screen, or when anything
inside ``main`` is cut: a table wider than its card, or any element whose content needs scrolling
sideways (nothing on these pages should; text wraps, tables stack on narrow screens). Text
fields, which scroll inside themselves by design, are the exception.

Screenshots of every page at 390 and 1280 px go to a temporary folder, and to
``$CALLHOOK_SCREENSHOT_DIR`` when set (``docs/screenshots/`` is made that way:
``CALLHOOK_SCREENSHOT_DIR=docs/screenshots pytest tests/e2e/dashboard/test_layout.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from callhook.store import accounts as account_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
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
from tests.support.receiver import Tls

pytestmark = pytest.mark.e2e

WIDTHS = (390, 768, 1280, 1920)
SCREENSHOT_WIDTHS = (390, 1280)
EMAIL = "operations-and-billing-team@acme-telecommunications-international.example"
PASSWORD = "a long enough password"
LONG = "x" * 200  # the longest token name and URL path segment the inputs accept
LONG_ID = "x" * 120  # and the longest pbx_id (ids are at most 128 characters)

#: Everything that does not fit, in one pass over the rendered page.
FIT_CHECK = """
(width) => {
  const problems = [];
  const root = document.documentElement;
  // A phone browser widens its layout viewport to fit a too-wide page (and zooms out), so
  // innerWidth alone would agree with any page: compare with the screen's width as well.
  const screenWidth = Math.min(window.innerWidth, width);
  if (root.scrollWidth > screenWidth) {
    problems.push(`the page is ${root.scrollWidth} px wide on a ${width} px screen`);
  }
  const describe = (el) => {
    const id = el.id ? `#${el.id}` : "";
    const cls = el.className && typeof el.className === "string"
      ? "." + el.className.trim().split(/\\s+/).join(".") : "";
    return `${el.tagName.toLowerCase()}${id}${cls}`;
  };
  for (const table of document.querySelectorAll("main table")) {
    const card = table.closest(".card") || table.parentElement;
    const room = card.getBoundingClientRect();
    const box = table.getBoundingClientRect();
    if (table.scrollWidth > card.clientWidth || box.right > room.right + 0.5) {
      problems.push(`a table (${Math.round(box.width)} px) overflows its card `
        + `(${card.clientWidth} px): ${table.innerText.slice(0, 60)}`);
    }
  }
  // Inside a visually hidden box (a 1 px clip: table headers of stacked rows, screen-reader
  // labels): not on screen, so not cut either.
  const hidden = (el) => {
    for (let up = el; up && up !== document.body; up = up.parentElement) {
      if (up.getBoundingClientRect().width <= 1 && getComputedStyle(up).overflow === "hidden") {
        return true;
      }
    }
    return false;
  };
  const reported = [];  // the outermost culprit says it; its descendants would only repeat it
  for (const el of document.querySelectorAll("main *")) {
    const style = getComputedStyle(el);
    if (style.display === "none" || el.closest("svg")) continue;
    if (reported.some((outer) => outer.contains(el)) || hidden(el)) continue;
    const before = problems.length;
    // Text fields scroll inside themselves by design; visually hidden labels are 1 px on purpose.
    const field = ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
    if (!field && el.clientWidth > 1 && el.scrollWidth > el.clientWidth + 1
        && ["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) {
      problems.push(`${describe(el)} cuts its content (${el.scrollWidth} px in `
        + `${el.clientWidth} px): ${el.innerText.slice(0, 60)}`);
    }
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > screenWidth + 0.5) {
      problems.push(`${describe(el)} ends at ${Math.round(box.right)} px, beyond the window: `
        + `${(el.innerText || "").slice(0, 60)}`);
    }
    if (problems.length > before) reported.push(el);
  }
  return problems;
}
"""


@dataclass
class Site:
    server: ServerThread
    receiver: ReceiverThread
    account_id: str
    failed_delivery: str = ""
    test_delivery: str = ""
    endpoint_id: str = ""

    @property
    def base(self) -> str:
        return self.server.base


@pytest.fixture
def receiver(tls: Tls) -> Iterator[ReceiverThread]:
    thread = ReceiverThread(tls).start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def site(tmp_path: Path, tls: Tls, receiver: ReceiverThread) -> Iterator[Site]:
    with serving(tmp_path, tls.ca_path) as server:
        yield _populate(server, receiver)


def _populate(server: ServerThread, receiver: ReceiverThread) -> Site:
    """An account with all the long values and states the pages can show."""
    platform = server.platform
    now = platform.clock.now()
    with platform.db.write() as conn:
        account = account_store.create(conn, name="Acme Telecom", now=now, rng=platform.rng)
        user_store.create(
            conn, account_id=account.id, email=EMAIL, password=PASSWORD, now=now, rng=platform.rng
        )
        integration_store.ensure(conn, account.id, now=now, box=platform.box, rng=platform.rng)
        integration_store.set_url(
            conn,
            account.id,
            receiver.url + "?route=" + "segment-" * 30,
            now=now,
            box=platform.box,
            rng=platform.rng,
        )
        integration_store.set_subscriptions(
            conn, account.id, ["incoming_call_end_chain_member_call", "sms", "voicemail"], now=now
        )
        integration_store.set_retry_policy(conn, account.id, "none", now=now)
        integration_store.rotate_secret(
            conn, account.id, now=now, box=platform.box, rng=platform.rng
        )
        for name, scopes in (
            (LONG, ["events.write", "webhooks.read", "webhooks.write"]),
            ("CRM sync (production, EU region)", ["webhooks.read"]),
            ("", ["events.write"]),
        ):
            token_store.create(
                conn, account_id=account.id, scopes=scopes, now=now, rng=platform.rng, name=name
            )
        # A second endpoint with the longest description and a long URL (the same receiver).
        endpoint = endpoint_store.create(
            conn,
            account.id,
            url=receiver.url + "?to=help-desk&route=" + "desk-" * 40,
            subscribed_events=["sms"],
            description="Help desk " + "z" * 200,
            limit=platform.settings.max_endpoints_per_account,
            allow_unsafe=True,
            now=now,
            box=platform.box,
            rng=platform.rng,
        )
    site = Site(server=server, receiver=receiver, account_id=account.id, endpoint_id=endpoint.id)
    for i, event in enumerate(["incoming_call_end_chain_member_call", "sms", "voicemail"] * 2):
        _publish(site, event, seed=i)
    eventually(lambda: _received(site) == 8, timeout=30)  # two sms also to the help desk
    return site


def _start_failing(site: Site) -> None:
    """The endpoint fails from now on: the chart gets red, the banner shows."""
    site.receiver.status = 503
    before = _received(site)
    for i in range(3):
        site.failed_delivery = _publish(site, "sms", seed=100 + i, pbx_id=f"{LONG_ID}-{i}")
    eventually(lambda: _received(site) == before + 6, timeout=30)  # sms: both endpoints
    # The help desk has failed long enough to be failing (banner, next probe, deadline,
    # history), and is throttled (its limits shown and in its form).
    from callhook.core.health import AttemptVerdict
    from callhook.core.throttle import Caps
    from callhook.store import endpoint_health

    platform = site.server.platform
    rules = endpoint_health.rules_from(platform.settings)
    now = platform.clock.now()
    with platform.db.write() as conn:
        endpoint_health.set_limits(
            conn, site.endpoint_id, site.account_id, rate_limit=50, max_in_flight=8, caps=Caps()
        )
        endpoint_health.record(
            conn,
            [
                endpoint_health.Verdict(
                    site.endpoint_id, site.account_id, AttemptVerdict.FAILURE, now
                )
                for _ in range(rules.policy.failure_threshold)
            ],
            now=now,
            rules=rules,
        )


def _publish(site: Site, event: str, *, seed: int, pbx_id: str | None = None) -> str:
    from callhook.events.models import PBX_ID_FIELD
    from callhook.publish import parse_event

    item = sample_event(event, seed=seed, account_id=site.account_id)
    if pbx_id is not None:  # the catalog's rule: the pbx_id is the record's own id
        item["pbx_id"] = item["data"][PBX_ID_FIELD[event]] = pbx_id
    published = site.server.platform.publisher.publish([parse_event(item)])[0]
    assert published.delivery_id is not None
    return published.delivery_id


def _received(site: Site) -> int:
    assert site.receiver.receiver is not None
    return len(site.receiver.receiver.received)


def _sign_in(browser: Browser, site: Site) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site.base}/dashboard/signin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("button", name="Send test event").first.click()
    page.wait_for_url(re.compile(r"/dashboard/test/dlv_"))
    site.test_delivery = page.url.rsplit("/", 1)[1]
    page.close()
    return context


def _pages(site: Site) -> list[tuple[str, str, Any]]:
    """(name, path, action after loading or None) for every page a customer can reach."""

    def reveal(page: Page) -> None:
        page.get_by_role("button", name="Reveal secret").click()
        expect(page.locator("[data-secret=current]")).to_be_visible()

    def new_token(page: Page) -> None:
        page.get_by_label("Name").fill("Billing export " + "y" * 60)
        page.locator("#scope-webhooks\\.read").check()
        page.get_by_role("button", name="Create token").click()
        expect(page.locator("#new-token")).to_be_visible()

    def bad_endpoint(page: Page) -> None:
        page.get_by_label("Endpoint URL").fill("ftp://" + LONG)
        page.get_by_label("Description").fill("d" * 500)
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#url-error")).to_be_visible()

    def reveal_endpoint(page: Page) -> None:
        page.get_by_role("button", name="Reveal secret").click()
        expect(page.locator("[data-secret=current]")).to_be_visible()

    def bad_url(page: Page) -> None:
        page.get_by_label("Endpoint URL").fill("ftp://" + LONG)
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#url-error")).to_be_visible()

    return [
        ("overview", "/dashboard", None),
        ("webhook", "/dashboard/webhook", None),
        ("webhook-error", "/dashboard/webhook", bad_url),
        ("secret", "/dashboard/secret", reveal),
        ("endpoints", "/dashboard/endpoints", None),
        ("endpoint-new", "/dashboard/endpoints/new", None),
        ("endpoint-new-error", "/dashboard/endpoints/new", bad_endpoint),
        ("endpoint", f"/dashboard/endpoints/{site.endpoint_id}", None),
        ("endpoint-secret", f"/dashboard/endpoints/{site.endpoint_id}/secret", reveal_endpoint),
        ("endpoint-delete", f"/dashboard/endpoints/{site.endpoint_id}/delete", None),
        ("test-event", f"/dashboard/test/{site.test_delivery}", None),
        ("deliveries", "/dashboard/deliveries", None),
        ("deliveries-failed", "/dashboard/deliveries?status=failed&pbx_id=xxx", None),
        # Every filter refused at once: the messages (the id rule is the longest) wrap.
        (
            "deliveries-bad-filters",
            "/dashboard/deliveries?pbx_id=-bad%20id&since=2026-13-01T00:00&event=nope",
            None,
        ),
        ("delivery", f"/dashboard/deliveries/{site.failed_delivery}", None),
        ("tokens", "/dashboard/tokens", None),
        ("token-created", "/dashboard/tokens", new_token),
        ("not-found", "/dashboard/deliveries/dlv_00000000000000000000000000", None),
    ]


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folders = [folder]
        extra = os.environ.get("CALLHOOK_SCREENSHOT_DIR")
        if extra:
            self.folders.append(Path(extra))
        for f in self.folders:
            f.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, name: str) -> None:
        for folder in self.folders:
            page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)


def test_every_page_fits_every_width(site: Site, tmp_path: Path) -> None:
    shots = Shots(tmp_path / "screenshots")
    problems: dict[str, list[str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        signed_in = _sign_in(browser, site)  # and a successful test event
        cookies = signed_in.cookies()
        _start_failing(site)
        pages = _pages(site)
        for width in WIDTHS:
            mobile = width < 700
            context = browser.new_context(
                viewport={"width": width, "height": 900}, is_mobile=mobile, has_touch=mobile
            )
            for name, path, action in [("signin", "/dashboard/signin", None)]:
                _check(context, site, name, path, action, width, shots, problems)
            context.add_cookies(cookies)  # type: ignore[arg-type]
            for name, path, action in pages:
                _check(context, site, name, path, action, width, shots, problems)
            context.close()
        browser.close()
    report = [f"{where}: {problem}" for where, found in problems.items() for problem in found]
    assert not report, "pages that do not fit:\n" + "\n".join(report)


def _check(
    context: BrowserContext,
    site: Site,
    name: str,
    path: str,
    action: Any,
    width: int,
    shots: Shots,
    problems: dict[str, list[str]],
) -> None:
    from playwright.sync_api import Error as PlaywrightError

    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(site.base + path)
    expect(page.locator("h1")).to_be_visible()
    found: list[str] = []
    if action is not None:
        try:
            action(page)
        except (PlaywrightError, AssertionError) as exc:  # e.g. a button pushed off screen
            found.append(f"cannot be used: {str(exc).splitlines()[0]}")
        # An action that posts a form shows the next page's element before that page has
        # loaded its stylesheet: measured unstyled, a long token name overflowed (seen in CI).
        page.wait_for_load_state("load")
    found += page.evaluate(FIT_CHECK, width)
    if found:
        problems[f"{name} at {width} px"] = found
    if width in SCREENSHOT_WIDTHS:
        shots.take(page, f"{name}-{width}")
    page.close()
