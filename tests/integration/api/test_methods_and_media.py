"""Methods, media types and documented answers over the real ingest and API v2, on SQLite and
PostgreSQL (issue 11, class 10): a 405 names every method the path serves, ingest takes exactly
JSON media types, and every status a route answers is in the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from callhook.store.tables import events
from tests.factories import make_token, sample_event
from tests.integration.api.helpers import BOTH, Api, assert_error, running_api

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
EXAMPLES = {"{event}": "sms", "{delivery_id}": "dlv_00000000000000000000", "{pbx_id}": "p-1"}
INGEST = "/internal/v1/events"


def _concrete(path: str) -> str:
    for name, value in EXAMPLES.items():
        path = path.replace(name, value)
    return path


def _documented(api: Api) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = api.client.get("/api/v2/openapi.json").json()["paths"]
    return paths


def test_every_other_method_is_405_naming_what_the_path_serves(
    tmp_path: Path, backend: str
) -> None:
    with running_api(tmp_path) as api:
        token = make_token(api.platform, api.account.id, [*BOTH, "events.write"])
        paths = _documented(api)
        # The fixed paths beside /webhooks/{event} and /deliveries/{delivery_id} too.
        served = {_concrete(p): sorted(m.upper() for m in ops) for p, ops in paths.items()}
        assert served["/api/v2/webhooks/sms"] == ["DELETE", "POST"]
        checked = 0
        for path, allowed in served.items():
            for method in METHODS:
                if method in allowed:
                    continue
                response = api.client.request(method, path, headers=api.auth(token))
                assert response.status_code == 405, (method, path)
                assert response.headers["Allow"] == ", ".join(allowed), (method, path)
                if method != "HEAD":
                    doc = assert_error(response, 405, path)
                    assert doc["errors"] == ["Method not allowed."]
                checked += 1
        assert checked > 40


def test_a_trailing_slash_is_not_found_in_the_envelope_not_redirected(
    tmp_path: Path, backend: str
) -> None:
    with running_api(tmp_path) as api:
        token = make_token(api.platform, api.account.id, [*BOTH, "events.write"])
        paths = _documented(api)
        # An empty last path parameter too: "/events/" with no pbx_id.
        slashed = [_concrete(p) + "/" for p in paths]
        slashed += [p[: p.rindex("{")] for p in paths if p.endswith("}")]
        for path in [*slashed, INGEST + "/"]:
            for method in ("GET", "POST", "PATCH", "DELETE"):
                response = api.client.request(
                    method, path, headers=api.auth(token), follow_redirects=False
                )
                assert response.status_code in (404, 405), (method, path)
                assert "Location" not in response.headers, (method, path)
                assert_error(response, response.status_code, path)
        assert "/api/v2/webhooks/events/" in slashed
        response = api.client.get("/api/v2/webhooks/events/", headers=api.auth(token))
        assert assert_error(response, 404, "/api/v2/webhooks/events/")["errors"] == ["Not found."]
        # A dashboard page typed with a slash: the page without it, the query kept; no other
        # host whatever the path (a Location starting "//" would be one).
        for typed, location in (
            ("/dashboard/", "/dashboard"),
            ("/dashboard/endpoints/?x=1&y=2", "/dashboard/endpoints?x=1&y=2"),
            ("/dashboard//evil.example/", "/dashboard//evil.example"),
            ("/dashboard/deliveries/a%2Fb/", "/dashboard/deliveries/a%2Fb"),
        ):
            for method in ("GET", "HEAD"):
                response = api.client.request(method, typed, follow_redirects=False)
                assert response.status_code == 308, (method, typed)
                assert response.headers["Location"] == location, (method, typed)
        # A form never posts to a slashed path: no redirect for that.
        response = api.client.post("/dashboard/endpoints/", follow_redirects=False)
        assert "Location" not in response.headers
        assert response.status_code in (404, 405)


ACCEPTED: list[str | None] = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON;charset=UTF-8",
    "application/cloudevents+json",
    None,  # none declared: read as JSON
]
REFUSED: list[str | None] = [
    "text/notjson",
    "text/json",
    "application/jsonx",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
]


@pytest.mark.parametrize("content_type", ACCEPTED + REFUSED)
def test_ingest_takes_exactly_json_media_types(
    tmp_path: Path, backend: str, content_type: str | None
) -> None:
    with running_api(tmp_path) as api:
        token = make_token(api.platform, None, ["events.write"])
        body = orjson.dumps(sample_event(account_id=api.account.id))
        headers = api.auth(token)
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = api.client.post(INGEST, content=body, headers=headers)
        if content_type in ACCEPTED:
            assert response.status_code == 202, response.text
        else:
            doc = assert_error(response, 415, INGEST)
            assert doc["errors"] == ["Content-Type must be application/json."]
            with api.platform.db.read() as conn:
                stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
            assert stored == 0


@pytest.mark.parametrize("content_type", REFUSED)
def test_the_api_body_route_takes_exactly_json_media_types(
    tmp_path: Path, content_type: str | None
) -> None:
    with running_api(tmp_path) as api:
        headers = api.auth()
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = api.client.post(
            "/api/v2/webhooks/deliveries/redeliver",
            content=b'{"since": "2026-01-15T10:00:00Z"}',
            headers=headers,
        )
        assert_error(response, 415, "/api/v2/webhooks/deliveries/redeliver")


def test_every_route_documents_the_answers_any_request_can_get(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        paths = _documented(api)
    for path, ops in paths.items():
        for method, op in ops.items():
            documented = set(op["responses"])
            assert {"408", "414", "431", "503"} <= documented, (method, path)
            assert {"401", "413", "429"} <= documented, (method, path)
    ingest = set(paths[INGEST]["post"]["responses"])
    assert ingest == {"202", "400", "401", "403", "408", "413", "414", "415", "422", "429"} | {
        "431",
        "503",
    }
