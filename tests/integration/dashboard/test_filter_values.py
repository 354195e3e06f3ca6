"""Issue 11, classes 3 and 4, on the dashboard's deliveries pages, on SQLite and PostgreSQL: the
filters take times in the accepted range and ids of the catalog's form; anything else is shown
next to its field (400), never a 500 (PostgreSQL refused a NUL in a filter or an id in the path
with one), and nothing is queued."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from callhook.store import deliveries as delivery_store
from callhook.store.tables import deliveries
from tests.factories import BACKENDS, publish_sample
from tests.factories import use_backend as using
from tests.integration.dashboard.site import (
    Site,
    csrf_of,
    make_site,
    make_user,
    page_token,
    sign_in,
)

RANGE = "Use a time from 1970-01-01T00:00 to 9999-12-31T23:59 (UTC)."
FORM = "Use the form YYYY-MM-DDTHH:MM (UTC)."
PBX = (
    "A pbx_id is 1 to 128 letters, digits, &#39;.&#39;, &#39;_&#39;, &#39;:&#39; or &#39;-&#39;,"
    " the first a letter or digit."
)
EMAIL = "ana@example.com"


@dataclass
class Dashboard:
    site: Site
    account_id: str
    pbx_ids: list[str]
    delivery_ids: list[str]

    def statuses(self) -> set[str]:
        with self.site.platform.db.read() as conn:
            rows = delivery_store.list_deliveries(conn, account_id=self.account_id)
        return {d.status for d in rows}


@pytest.fixture(scope="module", params=BACKENDS)
def dash(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    backend: str = request.param
    with using(backend):
        site = make_site(tmp_path_factory.mktemp(f"dash-{backend}"))
    account_id = make_user(site, email=EMAIL)
    published = [publish_sample(site.platform, account_id, seed=s) for s in range(3)]
    with site.platform.db.write() as conn:
        conn.execute(update(deliveries).values(status="failed", next_attempt_at=None))
    assert sign_in(site.client, EMAIL).status_code == 303
    ids = [p.delivery_id for p in published if p.delivery_id is not None]
    yield Dashboard(site, account_id, [p.pbx_id for p in published], ids)
    site.platform.db.dispose()


def _field_error(page: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', page)
    assert match is not None, f"no error next to {field_id}"
    return match.group(1)


def _listed(page: str, dash: Dashboard) -> set[str]:
    return {d for d in dash.delivery_ids if d in page}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0001-01-01T00:00", RANGE),
        ("1969-12-31T23:59", RANGE),
        ("0999-06-01", RANGE),
        ("0", FORM),
        ("1700000000", FORM),
        ("yesterday", FORM),
        ("2026-02-30T00:00", FORM),
        ("2026-01-15T10:30\x00", FORM),
        ("10000-01-01T00:00", FORM),
    ],
    ids=repr,
)
def test_bad_since_filters_are_shown_next_to_the_field(
    dash: Dashboard, value: str, message: str
) -> None:
    response = dash.site.client.get("/dashboard/deliveries", params={"since": value})
    assert response.status_code == 400
    assert _field_error(response.text, "f-since") == message
    assert _listed(response.text, dash) == set()


@pytest.mark.parametrize(
    ("value", "listed"),
    [("1970-01-01T00:00", True), ("9999-12-31T23:59", False), ("2026-01-15", True)],
)
def test_since_filters_at_the_edges_work(dash: Dashboard, value: str, listed: bool) -> None:
    response = dash.site.client.get("/dashboard/deliveries", params={"since": value})
    assert response.status_code == 200
    assert _listed(response.text, dash) == (set(dash.delivery_ids) if listed else set())


@pytest.mark.parametrize(
    "value", ["call\x00", "call 1", "x" * 129, "ünï", "call\n1", "-x"], ids=repr
)
def test_pbx_id_filters_must_be_ids(dash: Dashboard, value: str) -> None:
    response = dash.site.client.get("/dashboard/deliveries", params={"pbx_id": value})
    assert response.status_code == 400
    assert _field_error(response.text, "f-pbx") == PBX


def test_a_pbx_id_filter_still_finds_its_delivery(dash: Dashboard) -> None:
    response = dash.site.client.get("/dashboard/deliveries", params={"pbx_id": dash.pbx_ids[1]})
    assert response.status_code == 200
    assert _listed(response.text, dash) == {dash.delivery_ids[1]}


@pytest.mark.parametrize(
    "value",
    [
        "dlv\x00",
        "x",
        "dlv_" + "0" * 25 + "\x00",
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6DU",  # U is no Crockford digit
        "dlv_7ZZZZZZZZZ0000000000000000",  # an id's shape, a time past the year 9999
    ],
    ids=repr,
)
def test_broken_page_cursors_are_an_error_not_a_500(dash: Dashboard, value: str) -> None:
    response = dash.site.client.get("/dashboard/deliveries", params={"before": value})
    assert response.status_code == 400
    assert "This page link is broken" in html.unescape(response.text)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0001-01-01T00:00", RANGE),
        ("1969-12-31T23:59", RANGE),
        ("0", "Enter a date and time, like 2026-01-15T10:00 (UTC)."),
    ],
)
def test_bulk_redelivery_refuses_times_outside_the_range(
    dash: Dashboard, value: str, message: str
) -> None:
    response = dash.site.client.post(
        "/dashboard/deliveries/redeliver-failed",
        data={"csrf_token": page_token(dash.site.client), "since": value},
    )
    assert response.status_code == 400
    assert _field_error(response.text, "bulk-since") == message
    assert dash.statuses() == {"failed"}


def test_bulk_redelivery_refuses_a_time_to_come(dash: Dashboard) -> None:
    response = dash.site.client.post(
        "/dashboard/deliveries/redeliver-failed",
        data={"csrf_token": page_token(dash.site.client), "since": "9999-12-31T00:00"},
    )
    assert response.status_code == 400
    assert _field_error(response.text, "bulk-since") == (
        "Enter a time in the past (UTC): deliveries created since then are queued."
    )
    assert dash.statuses() == {"failed"}


def test_a_nul_in_a_form_field_is_a_400_and_changes_nothing(dash: Dashboard) -> None:
    response = dash.site.client.post(
        "/dashboard/deliveries/redeliver-failed",
        data={"csrf_token": page_token(dash.site.client), "since": "1970-01-01T00:00\x00"},
    )
    assert response.status_code == 400
    assert dash.statuses() == {"failed"}
    fresh = TestClient(dash.site.client.app)
    form = fresh.get("/dashboard/signin")
    signin = fresh.post(
        "/dashboard/signin",
        data={"email": "ana\x00@example.com", "password": "x", "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert signin.status_code == 400


@pytest.mark.parametrize(
    "segment", ["dlv_%00", "dlv_01KF0K8Y20PDDGMEPHX7DTC6D%00", "%00", "nope"], ids=repr
)
def test_impossible_ids_in_the_path_are_404(dash: Dashboard, segment: str) -> None:
    client = dash.site.client
    assert client.get(f"/dashboard/deliveries/{segment}").status_code == 404
    assert client.get(f"/dashboard/test/{segment}").status_code == 404
    token = page_token(client)
    redeliver = client.post(
        f"/dashboard/deliveries/{segment}/redeliver", data={"csrf_token": token}
    )
    assert redeliver.status_code == 404
    tok = segment.replace("dlv_", "tok_")
    revoke = client.post(f"/dashboard/tokens/{tok}/revoke", data={"csrf_token": token})
    assert revoke.status_code == 404
    assert dash.statuses() == {"failed"}
