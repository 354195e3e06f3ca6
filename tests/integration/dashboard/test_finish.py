"""Small things a new customer notices: the URL hint, the empty chart, the request body, the
sign-in hint, the spacing of the overview's actions."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tests.factories import publish_sample
from tests.integration.dashboard.site import make_site, make_user, sign_in

EMAIL = "owner@acme.example"


@pytest.mark.parametrize(
    ("unsafe", "says", "never_says"),
    [
        (True, "Development setting on", "HTTPS only, on a public address"),
        (False, "HTTPS only, on a public address", "Development setting on"),
    ],
)
def test_the_url_hint_tells_the_rule_in_force(
    tmp_path: Path, unsafe: bool, says: str, never_says: str
) -> None:
    site = make_site(tmp_path, allow_unsafe_targets=unsafe)
    make_user(site, email=EMAIL)
    sign_in(site.client, EMAIL)
    page = site.client.get("/dashboard/webhook").text
    hint = re.search(r'<p class="help" id="url-help">(.*?)</p>', page, re.S)
    assert hint is not None
    assert says in hint.group(1)
    assert never_says not in hint.group(1)


def test_an_empty_chart_labels_its_axis_once(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email=EMAIL)
    sign_in(site.client, EMAIL)
    page = site.client.get("/dashboard").text
    ticks = re.findall(
        r'<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="end">(\d+)</text>', page
    )
    assert ticks == ["0"]


def test_the_overview_actions_are_laid_out_apart(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email=EMAIL)
    sign_in(site.client, EMAIL)
    page = site.client.get("/dashboard").text
    form = re.search(
        r'<form method="post" action="/dashboard/test" class="actions">(.*?)</form>', page, re.S
    )
    assert form is not None
    assert "Send test event" in form.group(1)
    assert "Change settings" in form.group(1)


def test_a_deliverys_body_is_pretty_printed(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    account = make_user(site, email=EMAIL)
    published = publish_sample(site.platform, account, "sms")
    sign_in(site.client, EMAIL)
    page = site.client.get(f"/dashboard/deliveries/{published.delivery_id}").text
    body = re.search(r'<pre class="code" id="delivery-body">(.*?)</pre>', page, re.S)
    assert body is not None
    text = body.group(1).replace("&#34;", '"').replace("&quot;", '"')
    assert text.startswith('{\n  "id": ')
    assert orjson.loads(text)["id"] == published.id


def test_the_signin_hint_is_a_command_that_works(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    page = site.client.get("/dashboard/signin").text
    hint = re.search(r"<code>(callhook accounts create [^<]*)</code>", page)
    assert hint is not None
    command = hint.group(1).replace("&#34;", '"').replace("&quot;", '"')
    assert command == 'callhook accounts create "Your company" --email you@example.com'
    assert "--password-stdin" in page


def test_times_are_marked_up_for_machines_too(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    account = make_user(site, email=EMAIL)
    publish_sample(site.platform, account, "sms")
    sign_in(site.client, EMAIL)
    page = site.client.get("/dashboard/deliveries").text
    stamp = r"\d{4}-\d\d-\d\d.\d\d:\d\d:\d\d"
    assert re.search(rf'<time datetime="{stamp}Z">{stamp} UTC</time>', page)
