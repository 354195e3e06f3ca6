"""On a machine without internet access: the API reference renders, `/` leads to the dashboard.

Real Chromium against a real server; every request to anything but the server is refused (as an
offline machine would) and recorded, and none may be made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect, sync_playwright

from tests.e2e.dashboard.servers import CHROMIUM_ARGS, ServerThread, ensure_chromium, serving
from tests.support.receiver import Tls

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path, tls: Tls) -> Iterator[ServerThread]:
    with serving(tmp_path, tls.ca_path) as running:
        yield running


def test_api_reference_and_front_door_work_offline(server: ServerThread) -> None:
    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", offline)
        page = context.new_page()

        page.goto(f"{server.base}/api/v2/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Callhook API")
        operations = page.locator(".opblock-summary-path")
        expect(operations.first).to_be_visible()
        paths = set(operations.all_inner_texts())
        assert "/api/v2/webhooks/available" in {p.replace("\u200b", "") for p in paths}
        assert page.locator(".errors-wrapper").count() == 0

        page.goto(f"{server.base}/")
        expect(page).to_have_url(re.compile(r"/dashboard/signin"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        browser.close()
    assert elsewhere == []
