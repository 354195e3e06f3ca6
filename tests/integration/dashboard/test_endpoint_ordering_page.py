"""The endpoint form's ordering fields (issue 14) over plain HTTP against real SQLite: shown,
saved, and bad values shown next to their field with nothing stored."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callhook.events import call_scenario
from callhook.publish import PublishRequest
from callhook.store import endpoints as endpoint_store
from callhook.store import ordering as line_store
from callhook.store.tables import endpoints
from tests.integration.dashboard.site import Site, make_site, make_user, page_token, sign_in

EMAIL = "ana@example.com"
CRM = "https://127.0.0.1:9443/crm"


def _signed_in(tmp_path: Path) -> tuple[Site, str]:
    site = make_site(tmp_path)
    account_id = make_user(site, email=EMAIL)
    sign_in(site.client, EMAIL)
    return site, account_id


def _add(site: Site, **fields: Any) -> Any:
    data = {
        "csrf_token": page_token(site.client, "/dashboard/endpoints/new"),
        "url": CRM,
        "description": "CRM",
        "enabled": "on",
        "retry_policy": "exponential",
        "events": ["outgoing_call_end"],
        **fields,
    }
    return site.client.post("/dashboard/endpoints", data=data, follow_redirects=False)


def _rows(site: Site) -> Any:
    with site.platform.db.read() as conn:
        return conn.execute(select(endpoints).order_by(endpoints.c.id)).all()


def test_the_form_shows_and_saves_the_ordering_fields(tmp_path: Path) -> None:
    site, account_id = _signed_in(tmp_path)
    page = site.client.get("/dashboard/endpoints/new").text
    assert 'id="ordering-per-call" name="ordering" value="per_call" checked' in page
    assert re.search(r'id="ordering_bound_seconds"[^>]*value="300"', page)
    response = _add(
        site, ordering="none", ordering_bound_seconds="60", max_age_call_control_seconds="120"
    )
    assert response.status_code == 303
    with site.platform.db.read() as conn:
        [_, added] = endpoint_store.list_for_account(conn, account_id)
    assert (added.ordering, added.ordering_bound_seconds) == ("none", 60)
    assert (added.max_age_call_control_seconds, added.max_age_bulk_seconds) == (120, None)
    shown = site.client.get(f"/dashboard/endpoints/{added.id}").text
    assert 'id="ordering-none" name="ordering" value="none" checked' in shown
    assert re.search(r'id="max_age_call_control_seconds"[^>]*value="120"', shown)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ordering": "fifo"}, "ordering"),
        ({"ordering_bound_seconds": "-1"}, "ordering_bound_seconds"),
        ({"ordering_bound_seconds": ""}, "ordering_bound_seconds"),
        ({"ordering_bound_seconds": "1e9"}, "ordering_bound_seconds"),
        ({"max_age_call_control_seconds": "0"}, "max_age_call_control_seconds"),
        ({"max_age_bulk_seconds": "86401"}, "max_age_bulk_seconds"),
        ({"max_age_bulk_seconds": "soon"}, "max_age_bulk_seconds"),
        # What Python's int() takes but the API's JSON does not: other scripts' digits,
        # underscores, a sign; and a number with junk far after it (the field was cut at 40).
        ({"ordering_bound_seconds": "٣٠"}, "ordering_bound_seconds"),
        ({"max_age_bulk_seconds": "６０"}, "max_age_bulk_seconds"),
        ({"max_age_call_control_seconds": "1_000"}, "max_age_call_control_seconds"),
        ({"ordering_bound_seconds": "+60"}, "ordering_bound_seconds"),
        ({"ordering_bound_seconds": "300" + " " * 400 + "junk"}, "ordering_bound_seconds"),
    ],
)
def test_bad_ordering_fields_are_shown_next_to_their_field_and_nothing_is_stored(
    tmp_path: Path, fields: dict[str, str], field: str
) -> None:
    site, _ = _signed_in(tmp_path)
    before = _rows(site)
    response = _add(site, **fields)
    assert response.status_code == 400
    assert re.search(rf'<p class="field-error" id="{field}-error">[^<]+</p>', response.text)
    assert _rows(site) == before


def test_an_expired_delivery_says_why_it_was_never_sent(tmp_path: Path) -> None:
    """A delivery that expired before any attempt reads as such, not as "not attempted yet";
    a waiting one says what it waits for."""
    site, account_id = _signed_in(tmp_path)
    with site.platform.db.write() as conn:
        endpoint = endpoint_store.primary(conn, account_id)
        assert endpoint is not None
        endpoint_store.update(
            conn, account_id, endpoint.id, now=site.clock.now(), max_age_call_control_seconds=60
        )
    call = call_scenario("answered", random.Random(3), start=site.clock.now())
    first, second = (
        site.platform.publisher.publish(
            [PublishRequest(item.event, item.pbx_id, account_id, item.data)]
        )[0]
        for item in call[:2]
    )
    assert first.delivery_id is not None
    assert second.delivery_id is not None
    waiting = site.client.get(f"/dashboard/deliveries/{second.delivery_id}").text
    assert re.search(r'id="delivery-status">waiting<', waiting)
    assert "waiting for an earlier event of its call to finish" in waiting
    site.clock.advance(61)
    with site.platform.db.write() as conn:
        report = line_store.sweep(conn, now=site.clock.now(), policies=line_store.policies(conn))
    assert report.expired == 1
    page = site.client.get(f"/dashboard/deliveries/{first.delivery_id}").text
    assert re.search(r'id="delivery-status">expired<', page)
    assert "Not attempted yet." not in page
    assert "Never attempted: it expired first" in page
    assert re.search(r'id="delivery-why">Expired: older than the endpoint', page)
