"""The Endpoints pages over plain HTTP against real SQLite: add, edit, enable/disable, delete after
confirmation, secret, deliveries; bad input shown next to its field with nothing stored; another
account's endpoints out of reach; CSRF as every other form."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callhook.store import endpoints as endpoint_store
from callhook.store.tables import deliveries, endpoint_secrets, endpoint_subscriptions, endpoints
from tests.factories import publish_sample
from tests.integration.dashboard.site import Site, make_site, make_user, page_token, sign_in

EMAIL = "ana@example.com"
CRM = "https://127.0.0.1:9443/crm"


def _signed_in(tmp_path: Path, **overrides: Any) -> tuple[Site, str]:
    site = make_site(tmp_path, **overrides)
    account_id = make_user(site, email=EMAIL)
    sign_in(site.client, EMAIL)
    return site, account_id


def _state(site: Site) -> Any:
    with site.platform.db.read() as conn:
        return [
            conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            for table in (endpoints, endpoint_subscriptions, endpoint_secrets, deliveries)
        ]


def _list(site: Site, account_id: str) -> list[endpoint_store.Endpoint]:
    with site.platform.db.read() as conn:
        return endpoint_store.list_for_account(conn, account_id)


def _add(site: Site, **fields: Any) -> Any:
    data = {
        "csrf_token": page_token(site.client, "/dashboard/endpoints/new"),
        "url": CRM,
        "description": "CRM",
        "enabled": "on",
        "retry_policy": "exponential",
        "events": ["outgoing_call_end", "sms"],
        **fields,
    }
    return site.client.post("/dashboard/endpoints", data=data, follow_redirects=False)


def _field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert match is not None, f"no error next to {field_id}"
    return match.group(1)


def test_add_then_edit_an_endpoint(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    response = _add(site)
    assert response.status_code == 303
    [_, added] = _list(site, account_id)
    assert response.headers["location"] == f"/dashboard/endpoints/{added.id}?saved=added"
    assert (added.url, added.description, added.enabled) == (CRM, "CRM", True)
    assert added.subscribed_events == ("outgoing_call_end", "sms")

    page = site.client.get(response.headers["location"]).text
    assert "Endpoint added." in page
    assert f'action="/dashboard/endpoints/{added.id}/test"' in page
    assert f'href="/dashboard/endpoints/{added.id}/secret"' in page

    edited = site.client.post(
        f"/dashboard/endpoints/{added.id}",
        data={
            "csrf_token": page_token(site.client, f"/dashboard/endpoints/{added.id}"),
            "url": "https://127.0.0.1:9443/crm/v2",
            "description": "CRM (v2)",
            "retry_policy": "none",
            "all_events": "on",
        },
        follow_redirects=False,
    )
    assert edited.headers["location"] == f"/dashboard/endpoints/{added.id}?saved=1"
    [_, now] = _list(site, account_id)
    assert now.url == "https://127.0.0.1:9443/crm/v2"
    assert (now.description, now.enabled, now.retry_policy) == ("CRM (v2)", False, "none")
    assert now.subscribed_events is None


def test_the_list_shows_each_endpoints_health(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    _add(site, events=["sms"])
    [primary, crm] = _list(site, account_id)
    publish_sample(site.platform, account_id, "sms")
    with site.platform.db.write() as conn:  # the CRM's delivery failed, the primary's went
        conn.execute(
            deliveries.update()
            .where(deliveries.c.endpoint_id == crm.id)
            .values(
                status="failed",
                attempts=1,
                last_attempt_at=site.clock.now(),
                last_error_class="http_status",
                last_status_code=503,
            )
        )
        conn.execute(
            deliveries.update()
            .where(deliveries.c.endpoint_id == primary.id)
            .values(
                status="delivered",
                attempts=1,
                last_attempt_at=site.clock.now(),
                last_status_code=200,
            )
        )
    page = site.client.get("/dashboard/endpoints").text
    rows = dict(re.findall(r'<tr data-endpoint="(ep_\w+)">(.*?)</tr>', page, re.S))
    assert re.search(r"data-health>healthy<", rows[primary.id])
    assert re.search(r"data-health>failing: HTTP 503<", rows[crm.id])
    assert "0 delivered · 1 failed" in rows[crm.id]
    assert "1 delivered · 0 failed" in rows[primary.id]
    assert "Delete" not in rows[primary.id]  # the primary endpoint stays


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": ""}, "url", "Enter the HTTPS URL"),
        ({"url": "ftp://127.0.0.1/x"}, "url", "https"),
        ({"url": "https://127.0.0.1:9/hook"}, "url", "Another endpoint of this account"),
        ({"description": "d" * 501}, "description", "At most 500 characters"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_stored(
    tmp_path: Path, fields: dict[str, str], field: str, message: str
) -> None:
    site, _ = _signed_in(tmp_path)
    before = _state(site)
    response = _add(site, **fields)
    assert response.status_code == 400
    assert message.lower() in _field_error(response.text, field).lower()
    assert _state(site) == before


def test_unknown_events_and_retry_policies_are_refused(tmp_path: Path) -> None:
    site, _ = _signed_in(tmp_path)
    before = _state(site)
    response = _add(site, events=["sms", "no_such_event"], retry_policy="often")
    assert response.status_code == 400
    assert "no_such_event" in response.text
    assert "Choose a retry policy." in response.text
    assert _state(site) == before


def test_the_limit_is_shown_next_to_the_url(tmp_path: Path) -> None:
    site, _account_id = _signed_in(tmp_path, max_endpoints_per_account=2)
    assert _add(site).status_code == 303
    before = _state(site)
    response = _add(site, url="https://127.0.0.1:9444/desk")
    assert response.status_code == 400
    assert "2 endpoints, the most allowed" in _field_error(response.text, "url")
    assert _state(site) == before
    assert "Add endpoint" not in site.client.get("/dashboard/endpoints").text


def test_disable_enable_and_delete_after_confirmation(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    _add(site, events=["sms"])
    [primary, crm] = _list(site, account_id)
    publish_sample(site.platform, account_id, "sms")
    csrf = page_token(site.client, "/dashboard/endpoints")
    off = site.client.post(f"/dashboard/endpoints/{crm.id}/enabled", data={"csrf_token": csrf})
    assert "Endpoint disabled." in off.text
    assert _list(site, account_id)[1].enabled is False
    on = site.client.post(
        f"/dashboard/endpoints/{crm.id}/enabled", data={"csrf_token": csrf, "enabled": "on"}
    )
    assert "Endpoint enabled." in on.text
    assert _list(site, account_id)[1].enabled is True

    confirm = site.client.get(f"/dashboard/endpoints/{crm.id}/delete")
    assert confirm.status_code == 200
    assert "1 delivery will be deleted" in confirm.text
    assert [e.id for e in _list(site, account_id)] == [primary.id, crm.id]  # asking deletes nothing
    gone = site.client.post(f"/dashboard/endpoints/{crm.id}/delete", data={"csrf_token": csrf})
    assert "Endpoint deleted." in gone.text
    assert [e.id for e in _list(site, account_id)] == [primary.id]
    # The primary endpoint cannot be deleted: its confirmation page leads to its settings.
    kept = site.client.post(f"/dashboard/endpoints/{primary.id}/delete", data={"csrf_token": csrf})
    assert kept.status_code == 409
    assert [e.id for e in _list(site, account_id)] == [primary.id]
    assert (
        site.client.get(
            f"/dashboard/endpoints/{primary.id}/delete", follow_redirects=False
        ).headers["location"]
        == "/dashboard/webhook"
    )


def test_secret_of_one_endpoint_is_revealed_and_rotated_on_request(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    _add(site)
    [primary, crm] = _list(site, account_id)
    with site.platform.db.read() as conn:
        [secret] = endpoint_store.active_secrets(
            conn, account_id, crm.id, now=site.clock.now(), box=site.platform.box
        )
        [primary_secret] = endpoint_store.active_secrets(
            conn, account_id, primary.id, now=site.clock.now(), box=site.platform.box
        )
    path = f"/dashboard/endpoints/{crm.id}/secret"
    assert secret.secret not in site.client.get(path).text
    assert secret.secret not in site.client.get(f"/dashboard/endpoints/{crm.id}").text
    csrf = page_token(site.client, path)
    revealed = site.client.post(f"{path}/reveal", data={"csrf_token": csrf})
    assert secret.secret in revealed.text
    assert primary_secret.secret not in revealed.text
    assert revealed.headers["cache-control"] == "no-store"
    rotated = site.client.post(f"{path}/rotate", data={"csrf_token": csrf})
    with site.platform.db.read() as conn:
        new, old = endpoint_store.active_secrets(
            conn, account_id, crm.id, now=site.clock.now(), box=site.platform.box
        )
        [primary_after] = endpoint_store.active_secrets(
            conn, account_id, primary.id, now=site.clock.now(), box=site.platform.box
        )
    assert old.secret == secret.secret
    assert new.secret in rotated.text
    assert primary_after == primary_secret  # the other endpoint's secret is its own


def test_deliveries_filter_and_column_by_endpoint(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    make_user(site, email="bo@example.com")  # another account, with its own endpoint
    _add(site, events=["sms"])
    [_primary, crm] = _list(site, account_id)
    published = publish_sample(site.platform, account_id, "sms")
    listing = site.client.get(f"/dashboard/deliveries?endpoint={crm.id}").text
    assert listing.count(published.pbx_id) == 1
    assert '<td data-label="Endpoint"><span class="long">CRM</span></td>' in listing
    assert f'<option value="{crm.id}" selected>CRM</option>' in listing
    page = site.client.get(f"/dashboard/endpoints/{crm.id}").text
    assert published.pbx_id in page
    assert f'href="/dashboard/deliveries?endpoint={crm.id}"' in page
    refused = site.client.get("/dashboard/deliveries?endpoint=ep_01JH8Z00000000000000000000")
    assert refused.status_code == 400
    assert "Choose an endpoint from the list." in refused.text


def test_another_accounts_endpoints_are_out_of_reach(tmp_path: Path) -> None:
    site, _ = _signed_in(tmp_path)
    b_account = make_user(site, email="bo@example.com", url="https://127.0.0.1:7/b")
    with site.platform.db.write() as conn:
        theirs = endpoint_store.create(
            conn,
            b_account,
            url="https://127.0.0.1:7/b-crm",
            subscribed_events=None,
            limit=20,
            allow_unsafe=True,
            now=site.clock.now(),
            box=site.platform.box,
            rng=site.platform.rng,
        )
    before = _state(site)
    csrf = page_token(site.client)
    for path in ("", "/secret", "/delete"):
        response = site.client.get(f"/dashboard/endpoints/{theirs.id}{path}")
        assert response.status_code == 404
        assert "b-crm" not in response.text
    for path, data in (
        ("", {"url": "https://127.0.0.1:7/mine", "retry_policy": "none"}),
        ("/enabled", {}),
        ("/delete", {}),
        ("/secret/reveal", {}),
        ("/secret/rotate", {}),
        ("/test", {}),
    ):
        response = site.client.post(
            f"/dashboard/endpoints/{theirs.id}{path}", data={"csrf_token": csrf, **data}
        )
        assert response.status_code == 404, path
    assert "b-crm" not in site.client.get("/dashboard/endpoints").text
    assert _state(site) == before


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/dashboard/endpoints", {"url": CRM, "retry_policy": "none"}),
        ("/dashboard/endpoints/{ep}", {"url": CRM, "retry_policy": "none"}),
        ("/dashboard/endpoints/{ep}/enabled", {}),
        ("/dashboard/endpoints/{ep}/delete", {}),
        ("/dashboard/endpoints/{ep}/secret/reveal", {}),
        ("/dashboard/endpoints/{ep}/secret/rotate", {}),
        ("/dashboard/endpoints/{ep}/test", {}),
    ],
)
def test_every_form_needs_the_csrf_token(tmp_path: Path, path: str, data: dict[str, str]) -> None:
    site, account_id = _signed_in(tmp_path)
    _add(site, url="https://127.0.0.1:9444/desk")
    crm = _list(site, account_id)[1]
    before = _state(site)
    response = site.client.post(path.format(ep=crm.id), data=data)
    assert response.status_code == 403
    assert _state(site) == before
