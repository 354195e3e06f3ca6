"""Query parameters of every API v2 route: one the route does not take, one given twice, an
integer not written in plain digits, a time span that holds no instant — each a 422 in the
envelope naming the parameter, with nothing changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callhook.api.app import create_app
from tests.factories import make_settings, make_token
from tests.integration.api.helpers import Api, assert_error, assert_success, running_api

ALL_SCOPES = ("webhooks.read", "webhooks.write", "endpoints.write")
#: A value for each path parameter (real ones where the route needs one to get that far).
PATH_VALUES = {
    "event": "incoming_call_start",
    "pbx_id": "call-1",
    "delivery_id": "dlv_01JAAAAAAAAAAAAAAAAAAAAAAA",
}


def _api_routes(tmp_path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every API v2 operation of the OpenAPI document (what the API promises), with the query
    parameters it documents."""
    paths = create_app(make_settings(tmp_path)).openapi()["paths"]
    return sorted(
        (
            method.upper(),
            path,
            tuple(sorted(p["name"] for p in op.get("parameters", []) if p["in"] == "query")),
        )
        for path, ops in paths.items()
        if path.startswith("/api/v2/")
        for method, op in ops.items()
    )


ROUTES = _api_routes(Path("/nonexistent-callhook-test"))


def _state(api: Api) -> tuple[object, ...]:
    """What a refused request must not change: subscriptions, endpoints, deliveries."""
    listed = api.get("/api/v2/endpoints", headers=_auth(api)).json()["data"]
    deliveries = api.get("/api/v2/webhooks/deliveries").json()["data"]["deliveries"]
    return api.subscribed(), listed, [d["id"] for d in deliveries]


def _auth(api: Api) -> dict[str, str]:
    return api.auth(make_token(api.platform, api.account.id, ALL_SCOPES))


def _url(api: Api, path: str) -> str:
    with api.platform.db.read() as conn:
        from callhook.store import endpoints as endpoint_store

        primary = endpoint_store.primary(conn, api.account.id)
    assert primary is not None
    values = {**PATH_VALUES, "endpoint_id": primary.id}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_every_api_route_is_covered() -> None:
    assert len(ROUTES) >= 20
    assert ("GET", "/api/v2/webhooks/deliveries") in [r[:2] for r in ROUTES]


@pytest.mark.parametrize(("method", "path", "takes"), ROUTES)
def test_a_parameter_the_route_does_not_take_is_422_naming_it(
    tmp_path: Path, method: str, path: str, takes: tuple[str, ...]
) -> None:
    with running_api(tmp_path) as api:
        before = _state(api)
        url = _url(api, path)
        response = api.client.request(method, f"{url}?bogus=1", headers=_auth(api))
        doc = assert_error(response, 422, url)
        assert _state(api) == before
    listed = f"it takes: {', '.join(takes)}" if takes else "it takes none"
    assert doc["errors"] == [f"bogus: not a query parameter of this route ({listed})."]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("=5", "''"),
        ("caf%C3%A9=1", "'caf\\xe9'"),
        ("a%20b=1", "'a b'"),
        ("x" * 100 + "=1", "x" * 63 + "…"),
    ],
)
def test_an_odd_name_is_quoted_and_cut_short(tmp_path: Path, query: str, shown: str) -> None:
    with running_api(tmp_path) as api:
        response = api.get(f"/api/v2/webhooks/deliveries?{query}")
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    [message] = doc["errors"]
    assert message.startswith(f"{shown}: not a query parameter of this route (it takes: ")


@pytest.mark.parametrize(
    "query",
    [
        "limit=5&limit=6",
        "status=failed&status=failed",
        "since=2026-01-01T00:00:00Z&event=sms&since=2026-01-02T00:00:00Z",
    ],
)
def test_a_parameter_given_twice_is_422_naming_it(tmp_path: Path, query: str) -> None:
    name = query.split("=")[0]
    with running_api(tmp_path) as api:
        response = api.get(f"/api/v2/webhooks/deliveries?{query}")
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    assert doc["errors"] == [f"{name}: given more than once; send each query parameter once."]


@pytest.mark.parametrize(
    "limit", ["1.0", "+5", "%205", "5%20", "1_000", "-1", "0x10", "%D9%A3", ""]
)
def test_an_integer_not_in_plain_digits_is_422(tmp_path: Path, limit: str) -> None:
    with running_api(tmp_path) as api:
        response = api.get(f"/api/v2/webhooks/deliveries?limit={limit}")
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    assert doc["errors"] == ["limit: must be a whole number in digits."]


@pytest.mark.parametrize(("limit", "status"), [("05", 200), ("0", 422), ("201", 422), ("7", 200)])
def test_plain_digits_still_meet_the_range(tmp_path: Path, limit: str, status: int) -> None:
    with running_api(tmp_path) as api:
        response = api.get(f"/api/v2/webhooks/deliveries?limit={limit}")
    if status == 200:
        assert_success(response)
    else:
        assert_error(response, status)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z"),
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-02T01:00:00%2B01:00", "2026-01-02T00:00:00Z"),  # the same instant
    ],
)
def test_a_list_span_holding_no_instant_is_422(tmp_path: Path, since: str, until: str) -> None:
    with running_api(tmp_path) as api:
        response = api.get(f"/api/v2/webhooks/deliveries?since={since}&until={until}")
        ok = api.get(f"/api/v2/webhooks/deliveries?since={since}&until=2026-01-03T00:00:00.001Z")
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    assert doc["errors"] == ["until: must be later than since."]
    assert_success(ok)


def test_a_plus_sent_unencoded_in_a_time_gets_a_hint(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        response = api.get("/api/v2/webhooks/deliveries?since=2026-01-15T11:30:00+01:00")
        encoded = api.get("/api/v2/webhooks/deliveries?since=2026-01-15T11:30:00%2B01:00")
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    [message] = doc["errors"]
    assert message.startswith("since: must be an RFC 3339 date-time with a time zone")
    assert message.endswith(" A '+' in a query string must be sent as %2B.")
    assert_success(encoded)


def test_the_frameworks_own_checks_name_the_parameter_alone(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        response = api.get("/api/v2/webhooks/deliveries?limit=0")
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    assert doc["errors"] == ["limit: Input should be greater than or equal to 1"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "dlv_x",
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6DU",  # U is no Crockford digit
        "dlv_7ZZZZZZZZZ0000000000000000",  # an id's shape, a time past 9999
        "evt_01KF0K8Y20PDDGMEPHX7DTC6DA",
        "dlv_" + "0" * 70,  # longer than the documented maxLength
    ],
)
def test_every_wrong_cursor_gets_the_same_helpful_message(tmp_path: Path, cursor: str) -> None:
    with running_api(tmp_path) as api:
        response = api.get("/api/v2/webhooks/deliveries", params={"cursor": cursor})
    doc = assert_error(response, 422, "/api/v2/webhooks/deliveries")
    assert doc["errors"] == [
        "cursor: not one this API gave: pass next_cursor from the previous page."
    ]
