"""Settings, secret, tokens and health pages over plain HTTP, against real SQLite."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from callhook.events import SUBSCRIBABLE_EVENTS
from callhook.store import deliveries as delivery_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
from callhook.store.secretbox import SecretBox, decode_master_key, new_master_key
from callhook.store.tables import api_tokens, endpoint_secrets
from tests.factories import publish_sample
from tests.integration.dashboard.site import Site, make_site, make_user, page_token, sign_in


def _signed_in(tmp_path: Path, **overrides: Any) -> tuple[Site, str]:
    site = make_site(tmp_path, **overrides)
    account_id = make_user(site, email="ana@example.com", url=None)
    sign_in(site.client, "ana@example.com")
    return site, account_id


def _field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert match is not None, f"no error next to {field_id}"
    return match.group(1)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/callhook", "Webhook URLs must use HTTPS."),
        ("https://10.0.0.7/hook", "non-public address"),
        ("https://169.254.169.254/latest/meta-data", "non-public address"),
        ("https://[::ffff:127.0.0.1]/hook", "non-public address"),
        ("hooks.example.com/callhook", "must be absolute"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("", "Enter the HTTPS URL"),
    ],
)
def test_bad_urls_are_refused_next_to_the_field_and_nothing_is_stored(
    tmp_path: Path, url: str, message: str
) -> None:
    site, account_id = _signed_in(tmp_path, allow_unsafe_targets=False)
    response = site.client.post(
        "/dashboard/webhook",
        data={
            "csrf_token": page_token(site.client, "/dashboard/webhook"),
            "url": url,
            "retry_policy": "none",
            "events": ["voicemail", "sms"],
        },
    )
    assert response.status_code == 400
    assert message in _field_error(response.text, "url")
    assert 'aria-invalid="true"' in response.text
    # What was typed is kept in the form, so it can be corrected.
    assert f'value="{url}"' in response.text.replace("&amp;", "&")
    with site.platform.db.read() as conn:
        integration = integration_store.get(conn, account_id)
    assert integration is not None
    assert integration.url is None
    assert integration.subscribed_events == ()
    assert integration.retry_policy == "exponential"


def test_settings_are_saved_together(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path, allow_unsafe_targets=False)
    response = site.client.post(
        "/dashboard/webhook",
        data={
            "csrf_token": page_token(site.client, "/dashboard/webhook"),
            "url": "HTTPS://8.8.8.8/Hook",
            "retry_policy": "none",
            "events": ["sms", "incoming_call_start", "voicemail"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    with site.platform.db.read() as conn:
        integration = integration_store.get(conn, account_id)
    assert integration is not None
    assert integration.url == "https://8.8.8.8/Hook"
    assert integration.enabled is False  # the checkbox was not sent
    assert integration.retry_policy == "none"
    assert integration.subscribed_events == ("incoming_call_start", "voicemail", "sms")
    page = site.client.get("/dashboard/webhook?saved=1").text
    assert "Webhook settings saved." in page
    # three events, the retry radio and the ordering radio (per call, the default)
    assert page.count("checked") == 3 + 1 + 1


def test_select_all_and_none_work_without_javascript(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    token = page_token(site.client, "/dashboard/webhook")
    data = {"csrf_token": token, "url": "https://8.8.8.8/", "retry_policy": "exponential"}
    every = site.client.post("/dashboard/webhook", data={**data, "events_preset": "all"})
    assert every.status_code == 200
    assert every.text.count('name="events" value=') == len(SUBSCRIBABLE_EVENTS) == 14
    assert len(re.findall(r'name="events" value="[a-z_]+" checked', every.text)) == 14
    for group in ("Incoming calls", "Outgoing calls", "Additional events"):
        assert f"<legend>{group}</legend>" in every.text
    none = site.client.post(
        "/dashboard/webhook", data={**data, "events": ["sms"], "events_preset": "none"}
    )
    assert len(re.findall(r'name="events" value="[a-z_]+" checked', none.text)) == 0
    with site.platform.db.read() as conn:
        integration = integration_store.get(conn, account_id)
    assert integration is not None
    assert integration.url is None  # a preset only redraws the form


def test_an_unreadable_current_secret_is_named_and_rotated_away(tmp_path: Path) -> None:
    """Stored under another master key, the current secret is not shown (the page answered 500
    before): the page says why the deliveries wait and that rotating fixes it."""
    site, _ = _signed_in(tmp_path)
    stray = SecretBox(decode_master_key(new_master_key()))
    with site.platform.db.write() as conn:
        conn.execute(update(endpoint_secrets).values(secret_encrypted=stray.encrypt("whsec_x")))
    page = site.client.get("/dashboard/secret")
    assert page.status_code == 200
    assert "current secret cannot be read by this Callhook" in page.text
    site.client.post("/dashboard/secret/rotate", data={"csrf_token": page_token(site.client)})
    page = site.client.get("/dashboard/secret")
    assert "cannot be read" not in page.text
    assert "<strong>Current</strong>" in page.text


def test_secret_is_shown_only_on_explicit_reveal(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    with site.platform.db.read() as conn:
        [secret] = integration_store.active_secrets(
            conn, account_id, now=site.clock.now(), box=site.platform.box
        )
    assert secret.secret not in site.client.get("/dashboard/secret").text
    for path in ("/dashboard", "/dashboard/webhook", "/dashboard/tokens"):
        assert secret.secret not in site.client.get(path).text
    revealed = site.client.post(
        "/dashboard/secret/reveal", data={"csrf_token": page_token(site.client)}
    )
    assert secret.secret in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    rotated = site.client.post(
        "/dashboard/secret/rotate", data={"csrf_token": page_token(site.client)}
    )
    with site.platform.db.read() as conn:
        new, old = integration_store.active_secrets(
            conn, account_id, now=site.clock.now(), box=site.platform.box
        )
    assert old.secret == secret.secret
    assert old.expires_at == site.clock.now() + timedelta(hours=24)
    assert new.secret in rotated.text
    assert old.secret in rotated.text
    assert "stops signing" in rotated.text


def test_token_is_shown_once_and_stored_hashed(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    created = site.client.post(
        "/dashboard/tokens",
        data={
            "csrf_token": page_token(site.client),
            "name": "CRM sync",
            "scopes": ["webhooks.read", "events.write"],
            "expires": "30",
        },
    )
    assert created.status_code == 200
    match = re.search(
        r'id="new-token" class="mono" type="text" readonly value="(chk_[^"]+)"', created.text
    )
    assert match is not None
    plaintext = match.group(1)
    with site.platform.db.read() as conn:
        [token] = token_store.list_for(conn, account_id)
        stored = conn.execute(api_tokens.select()).one()
    assert token.scopes == frozenset({"webhooks.read", "events.write"})
    assert token.expires_at == site.clock.now() + timedelta(days=30)
    assert plaintext not in repr(tuple(stored))
    listing = site.client.get("/dashboard/tokens").text
    assert plaintext not in listing
    assert token.prefix in listing


def test_token_form_errors_are_shown_next_to_fields(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    response = site.client.post(
        "/dashboard/tokens", data={"csrf_token": page_token(site.client), "expires": "forever"}
    )
    assert response.status_code == 400
    assert "Give the token a name" in response.text
    assert "Choose at least one scope." in response.text
    assert "Choose when the token expires." in response.text
    with site.platform.db.read() as conn:
        assert token_store.list_for(conn, account_id) == []


def test_test_event_needs_a_url(tmp_path: Path) -> None:
    site, _ = _signed_in(tmp_path)
    response = site.client.post("/dashboard/test", data={"csrf_token": page_token(site.client)})
    assert response.status_code == 409
    assert "No webhook URL yet" in response.text


def test_deliveries_filters_and_bad_filter_values(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    account_id = make_user(site, email="ana@example.com")
    sms = publish_sample(site.platform, account_id, "sms", seed=1)
    call = publish_sample(site.platform, account_id, "incoming_call_start", seed=2)
    sign_in(site.client, "ana@example.com")
    only_sms = site.client.get("/dashboard/deliveries", params={"event": "sms"}).text
    assert sms.pbx_id in only_sms
    assert call.pbx_id not in only_sms
    by_pbx = site.client.get("/dashboard/deliveries", params={"pbx_id": call.pbx_id}).text
    assert call.pbx_id in by_pbx
    assert sms.pbx_id not in by_pbx
    bad = site.client.get("/dashboard/deliveries", params={"since": "yesterday", "status": "x"})
    assert bad.status_code == 400
    assert "Use the form YYYY-MM-DDTHH:MM (UTC)." in bad.text
    assert "Choose a status from the list." in bad.text
    bulk = site.client.post(
        "/dashboard/deliveries/redeliver-failed",
        data={"csrf_token": page_token(site.client), "since": "last week"},
    )
    assert bulk.status_code == 400
    assert 'id="bulk-since-error"' in bulk.text
    with site.platform.db.read() as conn:
        statuses = {d.status for d in delivery_store.list_deliveries(conn, account_id=account_id)}
    assert statuses == {"pending"}
