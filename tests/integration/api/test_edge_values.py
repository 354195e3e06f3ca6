"""Issue 11, classes 3 and 4, over the live API v2 (uvicorn, a real socket) on SQLite and
PostgreSQL: every time parameter and body field is RFC 3339 with a zone inside the accepted
range, else a 422 naming it; ids from the URL never reach the database when no row can have
them (PostgreSQL answered NUL with a 500). Nothing changes on a refusal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from sqlalchemy import update

from callhook.core.clock import FakeClock
from callhook.events.models import PBX_ID_RULE
from callhook.platform import Platform
from callhook.store.tables import deliveries
from tests.factories import BACKENDS, make_account, make_platform, make_token, publish_sample
from tests.factories import use_backend as using
from tests.integration.api.helpers import BOTH
from tests.support.edge_values import BAD_TIMES, EDGE_TIMES, NUMBER, RANGE
from tests.support.live import serving

LIST = "/api/v2/webhooks/deliveries"
WINDOW = "/api/v2/webhooks/deliveries/redeliver"


@dataclass
class Live:
    platform: Platform
    http: httpx.Client
    delivery_ids: list[str]

    def statuses(self) -> list[str]:
        response = self.http.get(LIST)
        assert response.status_code == 200, response.text
        return [d["status"] for d in response.json()["data"]["deliveries"]]


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    backend: str = request.param
    clock = FakeClock()
    with using(backend):
        platform = make_platform(
            tmp_path_factory.mktemp(f"api-{backend}"),
            clock=clock,
            rate_limit_per_token=1e6,
            rate_limit_burst=1_000_000,
        )
    account = make_account(platform, url="https://example.com/webhooks/sipsim")
    ids = []
    for seed in range(3):
        published = publish_sample(platform, account.id, seed=seed)
        assert published.delivery_id is not None
        ids.append(published.delivery_id)
        clock.advance(60)
    with platform.db.write() as conn:  # finished and failed: what a window redelivery takes
        conn.execute(update(deliveries).values(status="failed", next_attempt_at=None))
    headers = {"Authorization": f"Bearer {make_token(platform, account.id, BOTH)}"}
    with serving(platform) as base, httpx.Client(base_url=base, headers=headers) as http:
        yield Live(platform, http, ids)
    platform.db.dispose()


def _refused(live: Live, response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    doc = response.json()
    assert list(doc) == ["status", "errors", "request_id", "timestamp", "path"]
    assert live.statuses() == ["failed"] * 3  # nothing was queued again
    [message] = doc["errors"]
    assert isinstance(message, str)
    return message


# --- Class 3: times in queries and bodies ---------------------------------------------------------
@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize(("value", "reason"), BAD_TIMES, ids=[v for v, _ in BAD_TIMES])
def test_bad_list_times_are_422_naming_the_parameter(
    live: Live, param: str, value: str, reason: str
) -> None:
    message = _refused(live, live.http.get(LIST, params={param: value}))
    assert message.startswith(f"{param}: ")
    assert reason in message


@pytest.mark.parametrize("value", EDGE_TIMES)
def test_edge_times_are_accepted_in_the_list(live: Live, value: str) -> None:
    param = "since" if value.startswith("1970") else "until"
    response = live.http.get(LIST, params={param: value})
    assert response.status_code == 200, response.text
    assert {d["id"] for d in response.json()["data"]["deliveries"]} == set(live.delivery_ids)


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize(("value", "reason"), BAD_TIMES, ids=[v for v, _ in BAD_TIMES])
def test_bad_window_times_are_422_naming_the_field(
    live: Live, field: str, value: str, reason: str
) -> None:
    body = {"since": "2026-01-01T00:00:00Z", field: value}
    message = _refused(live, live.http.post(WINDOW, json=body))
    assert message.startswith(f"{field}: ")
    assert reason in message


@pytest.mark.parametrize("value", [0, 1700000000, 1.7e12, -1, True, None, [], {}])
def test_window_times_that_are_not_strings_are_422(live: Live, value: object) -> None:
    message = _refused(live, live.http.post(WINDOW, content=orjson.dumps({"since": value})))
    assert message.startswith("since: ")
    if not isinstance(value, bool) and isinstance(value, int | float):
        assert NUMBER in message


@pytest.mark.parametrize("since", EDGE_TIMES[:2])
@pytest.mark.parametrize("until", [None, *EDGE_TIMES[2:]])
def test_edge_windows_are_accepted(live: Live, since: str, until: str | None) -> None:
    # ``delivered`` matches nothing here, so the answer is counted and nothing changes.
    body: dict[str, Any] = {"since": since, "status": "delivered"}
    if until is not None:
        body["until"] = until
    response = live.http.post(WINDOW, json=body)
    assert response.status_code == 202, response.text
    assert response.json()["data"] == {"queued": 0}
    assert live.statuses() == ["failed"] * 3


def test_the_window_range_is_checked_before_the_order_of_since_and_until(live: Live) -> None:
    body = {"since": "9999-12-31T23:59:59-01:00", "until": "0001-01-01T00:00:00+01:00"}
    assert _refused(live, live.http.post(WINDOW, json=body)) == f"since: {RANGE}"
    body = {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert _refused(live, live.http.post(WINDOW, json=body)) == "until: must be later than since."


# --- Class 4: strings from the URL ----------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["call\x00", "call 1", "x" * 129, "ünï", "call\n", "-call"], ids=repr
)
def test_pbx_id_filters_must_be_ids(live: Live, value: str) -> None:
    # In words, as the publish API says it (too long too): never the regular expression.
    expected = f"pbx_id: {PBX_ID_RULE}"
    assert _refused(live, live.http.get(LIST, params={"pbx_id": value})) == expected
    path = "/api/v2/webhooks/events/" + quote(value, safe="")
    assert _refused(live, live.http.get(path)) == expected


@pytest.mark.parametrize(
    "segment", ["dlv_%00", "dlv_01KF0K8Y20PDDGMEPHX7DTC6D%00", "%00", "dlv_x%0Ay", "évt"]
)
def test_impossible_delivery_ids_are_404_without_a_query(live: Live, segment: str) -> None:
    message = _refused(live, live.http.get(f"{LIST}/{segment}"), status=404)
    assert message.startswith("Delivery '")
    _refused(live, live.http.post(f"{LIST}/{segment}/redeliver"), status=404)
