"""A dashboard under test: a migrated SQLite platform, an app, users, a signed-in client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from callhook.api.app import create_app
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import users as user_store
from tests.factories import make_account, make_platform

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    platform: Platform
    clock: FakeClock
    client: TestClient

    def new_client(self, *, https: bool = False) -> TestClient:
        base = "https://testserver" if https else "http://testserver"
        return TestClient(create_app(self.platform.settings, platform=self.platform), base_url=base)


def make_site(tmp_path: Path, *, https: bool = False, **overrides: Any) -> Site:
    clock = FakeClock()
    platform = make_platform(tmp_path, clock=clock, seed=7, **overrides)
    base = "https://testserver" if https else "http://testserver"
    client = TestClient(create_app(platform.settings, platform=platform), base_url=base)
    return Site(platform=platform, clock=clock, client=client)


def make_user(site: Site, *, email: str, url: str | None = "https://127.0.0.1:9/hook") -> str:
    """A new account (configured with ``url``) and its user; returns the account id."""
    account = make_account(site.platform, url=url)
    with site.platform.db.write() as conn:
        user_store.create(
            conn,
            account_id=account.id,
            email=email,
            password=PASSWORD,
            now=site.clock.now(),
            rng=site.platform.rng,
        )
    return account.id


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """GET the sign-in form (for its token and cookie), then POST it; no redirects followed."""
    form = client.get("/dashboard/signin")
    response: httpx.Response = client.post(
        "/dashboard/signin",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    return response


def page_token(client: TestClient, path: str = "/dashboard") -> str:
    """The CSRF token of the signed-in session, read from a page's forms."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)
