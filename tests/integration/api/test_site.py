"""The server's front door: `/` leads to the dashboard, a favicon, an API reference with no CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callhook.api.app import create_app
from tests.factories import make_platform


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    platform = make_platform(tmp_path)
    with TestClient(create_app(platform.settings, platform=platform)) as test_client:
        yield test_client


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_root_sends_people_to_the_dashboard(client: TestClient, method: str) -> None:
    response = client.request(method, "/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"
    signin = client.get("/", follow_redirects=True)
    assert signin.status_code == 200
    assert "<title>Sign in · Callhook</title>" in signin.text


def test_a_favicon_everywhere(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    page = client.get("/dashboard/signin").text
    assert '<link rel="icon" href="/favicon.ico"' in page
    svg = client.get("/dashboard/static/favicon.svg")
    assert svg.status_code == 200
    assert svg.text.startswith("<svg")


def test_the_api_reference_loads_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/api/v2/docs")
    assert page.status_code == 200
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls = re.findall(r"""url: ?["']([^"']+)["']""", page.text)
    assert refs
    assert urls == ["/api/v2/openapi.json"]
    assert [r for r in refs + urls if not r.startswith("/")] == []
    assert "https://" not in page.text
    assert '"validatorUrl": null' in page.text
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000, ref
