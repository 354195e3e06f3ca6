"""The endpoint fields of ordered delivery (issue 14) through /api/v2/endpoints: defaults,
changes, and bad input refused naming the field with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callhook.api.v2.models import OrderingName
from callhook.core.ordering import Ordering
from callhook.store.tables import endpoints
from tests.factories import make_token
from tests.integration.api.helpers import BOTH, Api, assert_error, assert_success, running_api

ALL = [*BOTH, "endpoints.write"]
CRM = "https://127.0.0.1:9443/crm"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path) as running:
        running.token = make_token(running.platform, running.account.id, ALL)
        yield running


def _endpoints(api: Api) -> Any:
    with api.platform.db.read() as conn:
        return conn.execute(select(endpoints).order_by(endpoints.c.id)).all()


def test_ordering_literal_is_the_enums() -> None:
    from typing import get_args

    (literal, *_) = get_args(OrderingName)
    assert get_args(literal) == tuple(o.value for o in Ordering)


def test_defaults_then_changes(api: Api) -> None:
    [primary] = assert_success(api.get("/api/v2/endpoints"))
    assert (
        primary["ordering"],
        primary["ordering_bound_seconds"],
        primary["max_age_call_control_seconds"],
        primary["max_age_bulk_seconds"],
    ) == ("per_call", 300, None, None)
    created = assert_success(
        api.post(
            "/api/v2/endpoints",
            json={
                "url": CRM,
                "subscribed_events": None,
                "ordering": "none",
                "ordering_bound_seconds": 60,
                "max_age_call_control_seconds": 120,
            },
        ),
        201,
    )
    assert (created["ordering"], created["ordering_bound_seconds"]) == ("none", 60)
    assert (created["max_age_call_control_seconds"], created["max_age_bulk_seconds"]) == (120, None)
    path = f"/api/v2/endpoints/{created['id']}"
    changed = assert_success(
        api.client.patch(
            path,
            headers=api.auth(),
            json={"ordering": "per_call", "max_age_call_control_seconds": None},
        )
    )
    assert (changed["ordering"], changed["ordering_bound_seconds"]) == ("per_call", 60)
    assert changed["max_age_call_control_seconds"] is None


BAD: list[tuple[dict[str, Any], str]] = [
    ({"ordering": "fifo"}, "ordering"),
    ({"ordering": None}, "ordering"),
    ({"ordering_bound_seconds": -1}, "ordering_bound_seconds"),
    ({"ordering_bound_seconds": 0}, "ordering_bound_seconds"),
    ({"ordering_bound_seconds": 10**12}, "ordering_bound_seconds"),
    ({"ordering_bound_seconds": "300"}, "ordering_bound_seconds"),
    ({"ordering_bound_seconds": 1.5}, "ordering_bound_seconds"),
    ({"ordering_bound_seconds": None}, "ordering_bound_seconds"),
    ({"max_age_call_control_seconds": -120}, "max_age_call_control_seconds"),
    ({"max_age_bulk_seconds": 86_401}, "max_age_bulk_seconds"),
    ({"max_age_bulk_seconds": True}, "max_age_bulk_seconds"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_patch_is_refused_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    [primary] = assert_success(api.get("/api/v2/endpoints"))
    path = f"/api/v2/endpoints/{primary['id']}"
    before = _endpoints(api)
    doc = assert_error(
        api.client.patch(path, headers=api.auth(), json={"description": "x", **body}), 422, path
    )
    assert doc["errors"][0].startswith(f"{field}: "), doc
    assert _endpoints(api) == before


@pytest.mark.parametrize(("body", "field"), [b for b in BAD if b[0].get(b[1], 0) is not None])
def test_bad_post_is_refused_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    before = _endpoints(api)
    doc = assert_error(
        api.post("/api/v2/endpoints", json={"url": CRM, "subscribed_events": None, **body}),
        422,
        "/api/v2/endpoints",
    )
    assert doc["errors"][0].startswith(f"{field}: "), doc
    assert _endpoints(api) == before
