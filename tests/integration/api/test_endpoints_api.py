"""/api/v2/endpoints: every route, the scopes, and bad input refused with nothing changed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callhook.api.v2.models import EndpointOut, RetryPolicyName
from callhook.core.retry import RETRY_POLICIES
from callhook.store import endpoints as endpoint_store
from callhook.store.tables import (
    deliveries,
    endpoint_events,
    endpoint_health,
    endpoint_secrets,
    endpoint_subscriptions,
    endpoints,
)
from tests.factories import make_account, make_token, publish_sample
from tests.integration.api.helpers import (
    BOTH,
    URL_A,
    Api,
    assert_error,
    assert_success,
    running_api,
)

ALL = [*BOTH, "endpoints.write"]
CRM = "https://127.0.0.1:9443/crm"
DESK = "https://localhost:9444/desk"
TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
FIELDS = [
    "id",
    "url",
    "description",
    "enabled",
    "subscribed_events",
    "retry_policy",
    "state",
    "state_since",
    "failing_since",
    "next_probe_at",
    "disable_at",
    "slowed_until",
    "rate_limit",
    "max_in_flight",
    "replay_on_recovery",
    "primary",
    "created_at",
    "updated_at",
    "ordering",
    "ordering_bound_seconds",
    "max_age_call_control_seconds",
    "max_age_bulk_seconds",
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path) as running:
        running.token = make_token(running.platform, running.account.id, ALL)
        yield running


def _add(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("url", CRM)
    body.setdefault("subscribed_events", ["outgoing_call_end"])
    data: dict[str, Any] = assert_success(api.post("/api/v2/endpoints", json=body), 201)
    return data


def _state(api: Api) -> Any:
    """Every row an endpoints request could change, of every account."""
    with api.platform.db.read() as conn:
        return [
            conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            for table in (
                endpoints,
                endpoint_subscriptions,
                endpoint_secrets,
                deliveries,
                endpoint_health,
                endpoint_events,
            )
        ]


def test_retry_policy_literal_is_the_catalogs() -> None:
    from typing import get_args

    (literal, *_) = get_args(RetryPolicyName)
    assert get_args(literal) == RETRY_POLICIES


def test_list_shows_the_primary_endpoint_first_in_the_documented_shape(api: Api) -> None:
    data = assert_success(api.get("/api/v2/endpoints"))
    assert len(data) == 1
    primary = data[0]
    assert list(primary) == FIELDS
    assert primary["url"] == URL_A
    assert primary["primary"] is True
    assert primary["enabled"] is True
    assert primary["subscribed_events"] == ["incoming_call_start", "incoming_call_end"]
    assert primary["retry_policy"] == "exponential"
    assert primary["state"] == "active"
    assert re.match(r"^ep_[0-9A-Z]{26}$", primary["id"])
    assert re.match(TIME, primary["created_at"])
    assert re.match(TIME, primary["updated_at"])
    EndpointOut.model_validate(primary)


def test_add_read_change_delete(api: Api) -> None:
    created = _add(api, description="CRM", retry_policy="none", enabled=False)
    assert list(created) == FIELDS
    assert created["url"] == CRM
    assert created["description"] == "CRM"
    assert created["subscribed_events"] == ["outgoing_call_end"]
    assert (created["retry_policy"], created["enabled"], created["primary"]) == (
        "none",
        False,
        False,
    )
    path = f"/api/v2/endpoints/{created['id']}"
    assert assert_success(api.get(path)) == created
    listed = assert_success(api.get("/api/v2/endpoints"))
    assert [e["id"] for e in listed][1:] == [created["id"]]

    api.clock.advance(5)
    changed = assert_success(
        api.client.patch(
            path,
            headers=api.auth(),
            json={"enabled": True, "subscribed_events": None, "url": DESK},
        )
    )
    assert changed["enabled"] is True
    assert changed["subscribed_events"] is None  # every event
    assert changed["url"] == DESK
    assert changed["description"] == "CRM"  # not given: unchanged
    assert changed["updated_at"] > created["updated_at"]

    deleted = assert_success(api.delete(path))
    assert deleted == {"id": created["id"], "deleted": True, "deliveries_deleted": 0}
    assert_error(api.get(path), 404, path)
    assert len(assert_success(api.get("/api/v2/endpoints"))) == 1


def test_post_defaults(api: Api) -> None:
    created = _add(api, subscribed_events=None)
    assert created["subscribed_events"] is None
    assert (created["description"], created["enabled"], created["retry_policy"]) == (
        "",
        True,
        "exponential",
    )


def test_events_are_kept_in_catalog_order_without_duplicates(api: Api) -> None:
    created = _add(api, subscribed_events=["sms", "incoming_call_start", "sms"])
    assert created["subscribed_events"] == ["incoming_call_start", "sms"]


def test_secret_read_and_rotate(api: Api) -> None:
    created = _add(api)
    path = f"/api/v2/endpoints/{created['id']}/secret"
    first = assert_success(api.get(path))
    assert list(first) == ["secrets"]
    [only] = first["secrets"]
    assert list(only) == ["secret", "expires_at"]
    assert only["secret"].startswith("whsec_")
    assert only["expires_at"] is None
    primary_secret = assert_success(api.get(f"/api/v2/endpoints/{_primary_id(api)}/secret"))[
        "secrets"
    ][0]["secret"]
    assert primary_secret == api.account.secret != only["secret"]

    rotated = assert_success(api.post(f"{path}/rotate"))
    new, old = rotated["secrets"]
    assert new["expires_at"] is None
    assert new["secret"] != only["secret"]
    assert old["secret"] == only["secret"]
    assert re.match(TIME, old["expires_at"])
    assert assert_success(api.get(path)) == rotated


def _primary_id(api: Api) -> str:
    with api.platform.db.read() as conn:
        primary = endpoint_store.primary(conn, api.account.id)
    assert primary is not None
    return primary.id


def test_test_event_goes_to_that_endpoint_only(api: Api) -> None:
    created = _add(api, enabled=False)
    queued = assert_success(api.post(f"/api/v2/endpoints/{created['id']}/test"), 202)
    assert queued["event"] == "test"
    delivery = assert_success(api.get(f"/api/v2/webhooks/deliveries/{queued['delivery_id']}"))
    assert delivery["endpoint_id"] == created["id"]
    listed = assert_success(api.get("/api/v2/webhooks/deliveries"))["deliveries"]
    assert [d["id"] for d in listed] == [queued["delivery_id"]]


def test_deliveries_show_and_filter_by_endpoint(api: Api) -> None:
    crm = _add(api, subscribed_events=["incoming_call_start"])
    publish_sample(api.platform, api.account.id, "incoming_call_start")
    listed = assert_success(api.get("/api/v2/webhooks/deliveries"))["deliveries"]
    assert sorted(d["endpoint_id"] for d in listed) == sorted([crm["id"], _primary_id(api)])
    assert len({d["event_id"] for d in listed}) == 1
    only = assert_success(
        api.get("/api/v2/webhooks/deliveries", params={"endpoint_id": crm["id"]})
    )["deliveries"]
    assert [d["endpoint_id"] for d in only] == [crm["id"]]


def test_delete_says_how_many_deliveries_went_and_leaves_the_others(api: Api) -> None:
    crm = _add(api, subscribed_events=["incoming_call_start"])
    for seed in range(3):
        publish_sample(api.platform, api.account.id, "incoming_call_start", seed=seed)
    deleted = assert_success(api.delete(f"/api/v2/endpoints/{crm['id']}"))
    listed = assert_success(api.get("/api/v2/webhooks/deliveries"))["deliveries"]
    assert deleted == {"id": crm["id"], "deleted": True, "deliveries_deleted": 3}
    assert [d["endpoint_id"] for d in listed] == [_primary_id(api)] * 3


def test_primary_url_cannot_be_changed_nor_the_primary_deleted(api: Api) -> None:
    path = f"/api/v2/endpoints/{_primary_id(api)}"
    before = _state(api)
    doc = assert_error(api.client.patch(path, headers=api.auth(), json={"url": CRM}), 400, path)
    assert doc["errors"][0].startswith("url: ")
    assert_error(api.delete(path), 409, path)
    assert _state(api) == before
    # Its other fields change as spec 002's setting does.
    changed = assert_success(
        api.client.patch(path, headers=api.auth(), json={"subscribed_events": ["sms"]})
    )
    assert changed["subscribed_events"] == ["sms"]
    assert api.subscribed() == ("sms",)


# --- Bad input: a 4xx in the envelope naming the field; nothing changed --------------------------
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"url": "not a url", "subscribed_events": []}, 400, "url"),
        ({"url": "https://no-such-host.invalid/x", "subscribed_events": []}, 400, "url"),
        ({"url": "https://u:p@127.0.0.1/x", "subscribed_events": []}, 400, "url"),
        ({"url": CRM, "subscribed_events": ["sms", "no_such_event"]}, 400, "subscribed_events"),
        ({"url": CRM, "subscribed_events": "sms"}, 422, "subscribed_events"),
        ({"url": CRM, "subscribed_events": ["sms", 7]}, 422, "subscribed_events.1"),
        ({"url": CRM}, 422, "subscribed_events"),
        ({"subscribed_events": []}, 422, "url"),
        ({"url": 5, "subscribed_events": []}, 422, "url"),
        ({"url": CRM, "subscribed_events": [], "enabled": "true"}, 422, "enabled"),
        ({"url": CRM, "subscribed_events": [], "enabled": 1}, 422, "enabled"),
        ({"url": CRM, "subscribed_events": [], "retry_policy": "often"}, 422, "retry_policy"),
        ({"url": CRM, "subscribed_events": [], "description": "x" * 501}, 422, "description"),
        ({"url": CRM, "subscribed_events": [], "description": None}, 422, "description"),
        ({"url": CRM, "subscribed_events": [], "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_post_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    before = _state(api)
    doc = assert_error(api.post("/api/v2/endpoints", json=body), status, "/api/v2/endpoints")
    assert doc["errors"][0].startswith(f"{field}: "), doc
    assert _state(api) == before


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"[]", "application/json", 400),
        (b"{", "application/json", 400),
        (b'"x"', "application/json", 400),
        (b'{"url": "https://127.0.0.1/"}', "text/plain", 415),
    ],
)
def test_body_that_is_not_a_json_object(
    api: Api, raw: bytes, content_type: str, status: int
) -> None:
    before = _state(api)
    headers = {**api.auth(), "Content-Type": content_type}
    assert_error(api.post("/api/v2/endpoints", content=raw, headers=headers), status)
    assert _state(api) == before


def test_duplicate_url_within_one_account_but_not_across_accounts(api: Api) -> None:
    _add(api)
    before = _state(api)
    doc = assert_error(
        api.post("/api/v2/endpoints", json={"url": CRM, "subscribed_events": []}), 409
    )
    assert doc["errors"][0].startswith("url: ")
    assert _state(api) == before
    other = make_account(api.platform, name="Other Co")
    token = make_token(api.platform, other.id, ALL)
    assert_success(
        api.post(
            "/api/v2/endpoints",
            json={"url": CRM, "subscribed_events": []},
            headers=api.auth(token),
        ),
        201,
    )
    # A change to another endpoint's URL is refused the same way.
    desk = _add(api, url=DESK)
    path = f"/api/v2/endpoints/{desk['id']}"
    before = _state(api)
    assert_error(api.client.patch(path, headers=api.auth(), json={"url": CRM}), 409, path)
    assert _state(api) == before


def test_the_primary_endpoints_url_is_taken_too(tmp_path: Path) -> None:
    with running_api(tmp_path, url="https://127.0.0.1:9500/primary") as api:
        api.token = make_token(api.platform, api.account.id, ALL)
        before = _state(api)
        doc = assert_error(
            api.post(
                "/api/v2/endpoints",
                json={"url": "https://127.0.0.1:9500/primary", "subscribed_events": []},
            ),
            409,
        )
        assert doc["errors"][0].startswith("url: ")
        assert _state(api) == before


def test_the_twenty_first_endpoint_is_refused(tmp_path: Path) -> None:
    with running_api(tmp_path, max_endpoints_per_account=3) as api:
        api.token = make_token(api.platform, api.account.id, ALL)
        _add(api, url="https://127.0.0.1:9001/a")
        _add(api, url="https://127.0.0.1:9002/b")  # with the primary: 3
        before = _state(api)
        doc = assert_error(
            api.post(
                "/api/v2/endpoints",
                json={"url": "https://127.0.0.1:9003/c", "subscribed_events": []},
            ),
            409,
        )
        assert doc["errors"][0].startswith("url: ")
        assert "3 endpoints" in doc["errors"][0]
        assert _state(api) == before


def test_default_limit_is_twenty(api: Api) -> None:
    for n in range(19):
        _add(api, url=f"https://127.0.0.1:{9000 + n}/e")
    before = _state(api)
    doc = assert_error(
        api.post(
            "/api/v2/endpoints", json={"url": "https://127.0.0.1:9999/e", "subscribed_events": []}
        ),
        409,
    )
    assert "20 endpoints" in doc["errors"][0]
    assert _state(api) == before


def test_private_address_is_refused_when_unsafe_targets_are_not_allowed(tmp_path: Path) -> None:
    with running_api(tmp_path, allow_unsafe_targets=False) as api:
        api.token = make_token(api.platform, api.account.id, ALL)
        before = _state(api)
        for url in (
            "https://10.1.2.3/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "http://93.184.215.14/x",
        ):
            doc = assert_error(
                api.post("/api/v2/endpoints", json={"url": url, "subscribed_events": []}), 400
            )
            assert doc["errors"][0].startswith("url: "), doc
        assert _state(api) == before


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"url": None}, 422, "url"),
        ({"enabled": None}, 422, "enabled"),
        ({"enabled": "no"}, 422, "enabled"),
        ({"retry_policy": None}, 422, "retry_policy"),
        ({"subscribed_events": ["nope"]}, 400, "subscribed_events"),
        ({"url": "ftp://127.0.0.1/x"}, 400, "url"),
        ({"id": "ep_x"}, 422, "id"),
        ({"primary": True}, 422, "primary"),
    ],
)
def test_bad_patch_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    created = _add(api)
    path = f"/api/v2/endpoints/{created['id']}"
    before = _state(api)
    doc = assert_error(api.client.patch(path, headers=api.auth(), json=body), status, path)
    assert doc["errors"][0].startswith(f"{field}: "), doc
    assert _state(api) == before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/secret"),
        ("POST", "/secret/rotate"),
        ("POST", "/test"),
        ("POST", "/pause"),
        ("POST", "/resume"),
    ],
)
@pytest.mark.parametrize(
    "endpoint_id",
    ["ep_01JH8Z00000000000000000000", "ep_nope", "dlv_01JH8Z00000000000000000000", "x" * 64],
)
def test_unknown_ids_are_404(api: Api, method: str, suffix: str, endpoint_id: str) -> None:
    before = _state(api)
    path = f"/api/v2/endpoints/{endpoint_id}{suffix}"
    body = {"enabled": False} if method == "PATCH" else None
    doc = assert_error(api.client.request(method, path, headers=api.auth(), json=body), 404, path)
    assert doc["errors"] == [f"Endpoint '{endpoint_id}' not found."]
    assert _state(api) == before


def test_deliveries_filter_by_unknown_or_foreign_endpoint_is_404(api: Api) -> None:
    other = make_account(api.platform, url="https://127.0.0.1:7000/b", name="Other Co")
    with api.platform.db.read() as conn:
        foreign = endpoint_store.primary(conn, other.id)
    assert foreign is not None
    for endpoint_id in (foreign.id, "ep_01JH8Z00000000000000000000"):
        doc = assert_error(
            api.get("/api/v2/webhooks/deliveries", params={"endpoint_id": endpoint_id}), 404
        )
        assert doc["errors"] == [f"Endpoint '{endpoint_id}' not found."]


def test_a_token_gets_endpoints_write_only_when_asked_for(api: Api) -> None:
    plain = make_token(api.platform, api.account.id, BOTH)
    before = _state(api)
    doc = assert_error(
        api.post(
            "/api/v2/endpoints",
            json={"url": CRM, "subscribed_events": []},
            headers=api.auth(plain),
        ),
        403,
    )
    assert doc["errors"] == ["This token lacks the required scope 'endpoints.write'."]
    assert_error(
        api.get(f"/api/v2/endpoints/{_primary_id(api)}/secret", headers=api.auth(plain)), 403
    )
    assert _state(api) == before
    # Reading needs webhooks.read only.
    assert assert_success(api.get("/api/v2/endpoints", headers=api.auth(plain)))


def test_deleting_an_endpoint_keeps_the_event_and_the_other_deliveries(api: Api) -> None:
    crm = _add(api, subscribed_events=["incoming_call_start"])
    published = publish_sample(api.platform, api.account.id, "incoming_call_start")
    assert_success(api.delete(f"/api/v2/endpoints/{crm['id']}"))
    with api.platform.db.read() as conn:
        left = (
            conn.execute(
                select(deliveries.c.endpoint_id).where(deliveries.c.event_id == published.id)
            )
            .scalars()
            .all()
        )
        n = conn.execute(select(func.count()).select_from(endpoint_secrets)).scalar_one()
    assert left == [_primary_id(api)]
    assert n == 1  # the primary endpoint's
