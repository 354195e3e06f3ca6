"""Bad input of every kind: a 4xx in the error envelope, and nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.api.helpers import assert_error, running_api

BEFORE = ("incoming_call_start", "incoming_call_end")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v2/webhooks", "GET"),
        ("PATCH", "/api/v2/webhooks/outgoing_call_end", "DELETE, POST"),
        ("GET", "/api/v2/webhooks/outgoing_call_end", "DELETE, POST"),
        ("POST", "/api/v2/webhooks/available", "GET"),
        ("DELETE", "/api/v2/webhooks/available", "GET"),
        ("POST", "/api/v2/webhooks/deliveries", "GET"),
        ("DELETE", "/api/v2/webhooks/deliveries", "GET"),
        ("DELETE", "/api/v2/webhooks/test", "POST"),
        ("GET", "/api/v2/webhooks/test", "POST"),
        ("GET", "/api/v2/webhooks/deliveries/redeliver", "POST"),
        ("OPTIONS", "/api/v2/webhooks", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(tmp_path: Path, method: str, path: str, allow: str) -> None:
    with running_api(tmp_path) as api:
        response = api.client.request(method, path, headers=api.auth())
        doc = assert_error(response, 405, path)
        assert api.subscribed() == BEFORE
    assert doc["errors"] == ["Method not allowed."]
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    ("segment", "status"),
    [
        ("x" * 65, 422),
        ("incoming_call_start" * 20, 422),
        ("%FF%FE", 400),
        ("%C3%28", 400),
        ("incoming_call_start%00", 400),
        ("INCOMING_CALL_START", 400),
        ("incoming%20call", 400),
    ],
)
def test_bad_event_segments(tmp_path: Path, method: str, segment: str, status: int) -> None:
    with running_api(tmp_path) as api:
        response = api.client.request(method, f"/api/v2/webhooks/{segment}", headers=api.auth())
        assert_error(response, status)
        assert api.subscribed() == BEFORE


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/webhooks"),
        ("GET", "/api/v2/webhooks/available"),
        ("GET", "/api/v2/webhooks/deliveries"),
        ("DELETE", "/api/v2/webhooks/incoming_call_start"),
        ("POST", "/api/v2/webhooks/outgoing_call_end"),
        ("POST", "/api/v2/webhooks/test"),
    ],
)
def test_body_where_none_is_taken_is_400(tmp_path: Path, method: str, path: str) -> None:
    with running_api(tmp_path) as api:
        response = api.client.request(method, path, headers=api.auth(), content=b'{"event": "sms"}')
        doc = assert_error(response, 400, path)
        assert api.subscribed() == BEFORE
        listed = api.get("/api/v2/webhooks/deliveries").json()["data"]["deliveries"]
    assert doc["errors"] == [f"{method} {path} takes no request body."]
    assert listed == []


def test_empty_body_with_any_content_type_is_fine(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        headers = {**api.auth(), "Content-Type": "application/x-www-form-urlencoded"}
        response = api.post("/api/v2/webhooks/sms", headers=headers, content=b"")
        assert response.status_code == 200
        assert "sms" in api.subscribed()


def test_huge_body_is_413_before_reading_it(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        response = api.post("/api/v2/webhooks/sms", content=b"x" * 100_000)
        assert_error(response, 413, "/api/v2/webhooks/sms")
        assert api.subscribed() == BEFORE


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_huge_headers_are_431(tmp_path: Path, method: str) -> None:
    with running_api(tmp_path) as api:
        headers = {**api.auth(), "X-Padding": "a" * 9000}
        response = api.client.request(method, "/api/v2/webhooks/sms", headers=headers)
        if method == "GET":
            assert_error(response, 405)
        else:
            doc = assert_error(response, 431, "/api/v2/webhooks/sms")
            assert doc["errors"] == ["Request header fields too large."]
        assert api.subscribed() == BEFORE


def test_huge_token_is_401(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        response = api.get(
            "/api/v2/webhooks", headers={"Authorization": "Bearer chk_" + "a" * 5000}
        )
        assert_error(response, 401)


@pytest.mark.parametrize(
    "path", ["/api/v2/nope", "/api/v2/webhooks/events/a/b", "/api/v2/webhooks/a/b/c"]
)
def test_unknown_paths_are_404_in_the_envelope(tmp_path: Path, path: str) -> None:
    with running_api(tmp_path) as api:
        doc = assert_error(api.get(path), 404, path)
    assert doc["errors"] == ["Not found."]
