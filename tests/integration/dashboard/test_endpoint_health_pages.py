"""An endpoint's health in the dashboard over plain HTTP against real SQLite: Pause and Resume,
the failing banner with its next probe and disable deadline, the event log, and the throttling
fields of the form (bad values next to their field, nothing stored)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callhook.core.health import AttemptVerdict, EndpointState
from callhook.store import endpoint_health, endpoint_status
from callhook.store import endpoints as endpoint_store
from callhook.store.tables import endpoint_events, endpoints
from callhook.store.tables import endpoint_health as health_table
from tests.integration.dashboard.site import Site, make_site, make_user, page_token, sign_in

EMAIL = "ana@example.com"
CRM = "https://127.0.0.1:9443/crm"


def _signed_in(tmp_path: Path) -> tuple[Site, str]:
    site = make_site(tmp_path)
    account_id = make_user(site, email=EMAIL)
    sign_in(site.client, EMAIL)
    return site, account_id


def _add(site: Site, **fields: Any) -> str:
    data = {
        "csrf_token": page_token(site.client, "/dashboard/endpoints/new"),
        "url": CRM,
        "description": "CRM",
        "enabled": "on",
        "retry_policy": "exponential",
        "events": ["outgoing_call_end"],
        **fields,
    }
    response = site.client.post("/dashboard/endpoints", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location.split("?")[0].rsplit("/", 1)[1]


def _post(site: Site, path: str, page: str) -> Any:
    return site.client.post(
        path, data={"csrf_token": page_token(site.client, page)}, follow_redirects=False
    )


def _snapshot(site: Site) -> Any:
    with site.platform.db.read() as conn:
        return [
            conn.execute(select(t).order_by(*t.primary_key.columns)).all()
            for t in (endpoints, health_table, endpoint_events)
        ]


def test_pause_and_resume_buttons_and_the_history(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    endpoint_id = _add(site)
    page_path = f"/dashboard/endpoints/{endpoint_id}"
    page = site.client.get(page_path).text
    assert 'Delivery state: <span class="pill ok">active</span>' in page
    assert f'action="{page_path}/pause"' in page
    assert "No change of state yet." in page

    response = _post(site, f"{page_path}/pause", page_path)
    assert response.headers["location"] == f"{page_path}?saved=paused"
    page = site.client.get(response.headers["location"]).text
    assert "Paused: new events wait, in order, until you resume." in page
    assert "Paused since" in page
    assert f'action="{page_path}/resume"' in page
    assert f'action="{page_path}/pause"' not in page
    assert "active → paused" in page
    assert "paused (customer)" in page
    listed = site.client.get("/dashboard/endpoints").text
    assert "paused" in listed

    response = _post(site, f"{page_path}/resume", page_path)
    page = site.client.get(response.headers["location"]).text
    assert "Resumed: deliveries go out again" in page
    assert "paused → active" in page
    with site.platform.db.read() as conn:
        assert endpoint_store.get(conn, account_id, endpoint_id).state is EndpointState.ACTIVE


def test_another_accounts_endpoint_cannot_be_paused(tmp_path: Path) -> None:
    site, _ = _signed_in(tmp_path)
    other = make_user(site, email="bo@example.com")
    with site.platform.db.read() as conn:
        foreign = endpoint_store.primary(conn, other)
    assert foreign is not None
    before = _snapshot(site)
    for action in ("pause", "resume"):
        response = _post(site, f"/dashboard/endpoints/{foreign.id}/{action}", "/dashboard")
        assert response.status_code == 404
    assert _snapshot(site) == before


def test_the_failing_banner_names_the_next_probe_and_the_disable_deadline(
    tmp_path: Path,
) -> None:
    site, account_id = _signed_in(tmp_path)
    endpoint_id = _add(site)
    rules = endpoint_health.rules_from(site.platform.settings)
    now = site.platform.clock.now()
    with site.platform.db.write() as conn:
        endpoint_health.record(
            conn,
            [
                endpoint_health.Verdict(endpoint_id, account_id, AttemptVerdict.FAILURE, now)
                for _ in range(rules.policy.failure_threshold)
            ],
            now=now,
            rules=rules,
        )
        status = endpoint_status.statuses(conn, [endpoint_id], now=now, rules=rules)[endpoint_id]
    assert status.next_probe_at is not None
    assert status.disable_at is not None
    page = site.client.get(f"/dashboard/endpoints/{endpoint_id}").text
    banner = re.search(r"<div class=\"banner\"[^>]*data-health-banner>(.*?)</div>", page, re.S)
    assert banner is not None
    text = re.sub(r"<[^>]+>", "", banner.group(1))
    probe = status.next_probe_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    deadline = status.disable_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert "Failing since" in text
    assert f"next probe at {probe}" in " ".join(text.split())
    assert f"will be disabled on {deadline} unless it recovers" in " ".join(text.split())
    assert "active → failing" in page
    assert "failed repeatedly" in page
    assert "failing: probing" in site.client.get("/dashboard/endpoints").text


def test_throttling_fields_are_saved_and_shown(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    endpoint_id = _add(site, rate_limit="50", max_in_flight="4")
    with site.platform.db.read() as conn:
        eh = endpoint_health.get(conn, endpoint_id, account_id)
    assert (eh.rate_limit, eh.max_in_flight) == (50, 4)
    page = site.client.get(f"/dashboard/endpoints/{endpoint_id}").text
    assert 'id="rate_limit" name="rate_limit"' in page
    assert 'value="50"' in page
    assert "Limits: 50 deliveries/s, 4 at once." in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_limit", "0"),
        ("rate_limit", "-5"),
        ("rate_limit", "1001"),
        ("rate_limit", "fast"),
        ("max_in_flight", "0"),
        ("max_in_flight", "65"),
        ("max_in_flight", "2.5"),
        # What Python's float()/int() take but the API's JSON does not.
        ("rate_limit", "٥"),
        ("rate_limit", "1_0"),
        ("rate_limit", "nan"),
        ("rate_limit", "inf"),
        ("max_in_flight", "４"),
        ("max_in_flight", "+4"),
        ("max_in_flight", "4" + " " * 300 + "junk"),
        ("rate_limit", "1" + " " * 39 + "x"),
    ],
)
def test_bad_throttling_values_are_shown_next_to_the_field_with_nothing_saved(
    tmp_path: Path, field: str, value: str
) -> None:
    site, _ = _signed_in(tmp_path)
    endpoint_id = _add(site, rate_limit="10")
    page_path = f"/dashboard/endpoints/{endpoint_id}"
    before = _snapshot(site)
    response = site.client.post(
        page_path,
        data={
            "csrf_token": page_token(site.client, page_path),
            "url": CRM,
            "description": "changed",
            "enabled": "on",
            "retry_policy": "exponential",
            "events": ["outgoing_call_end"],
            field: value,
        },
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert re.search(rf'<p class="field-error" id="{field}-error">[^<]+</p>', response.text)
    assert _snapshot(site) == before
