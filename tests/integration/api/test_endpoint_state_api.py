"""Endpoint health through API v2: pause and resume, the throttling fields within the
operator's caps, the state and its times in the endpoint JSON, and bad input refused with
nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callhook.api.v2.models import EndpointOut, EndpointStateName
from callhook.core.clock import rfc3339
from callhook.core.health import AttemptVerdict, EndpointState
from callhook.store import endpoint_health, endpoint_status
from callhook.store.tables import deliveries, endpoint_events, endpoints
from callhook.store.tables import endpoint_health as health_table
from tests.factories import make_account, make_token, publish_sample
from tests.integration.api.helpers import BOTH, Api, assert_error, assert_success, running_api

ALL = [*BOTH, "endpoints.write"]
CRM = "https://127.0.0.1:9443/crm"
DESK = "https://localhost:9444/desk"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path) as running:
        running.token = make_token(running.platform, running.account.id, ALL)
        yield running


def _add(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("url", CRM)
    body.setdefault("subscribed_events", None)
    data: dict[str, Any] = assert_success(api.post("/api/v2/endpoints", json=body), 201)
    return data


def _patch(api: Api, endpoint_id: str, body: Any, token: str | None = None) -> Any:
    return api.client.patch(f"/api/v2/endpoints/{endpoint_id}", headers=api.auth(token), json=body)


def _snapshot(api: Api) -> Any:
    with api.platform.db.read() as conn:
        return [
            conn.execute(select(t).order_by(*t.primary_key.columns)).all()
            for t in (endpoints, health_table, endpoint_events, deliveries)
        ]


def _log(api: Api, endpoint_id: str) -> list[tuple[str, str, str]]:
    with api.platform.db.read() as conn:
        return [
            (e.before, e.after, e.cause)
            for e in reversed(endpoint_status.event_log(conn, endpoint_id))
        ]


def test_state_names_are_the_machines() -> None:
    from typing import get_args

    (literal, *_) = get_args(EndpointStateName)
    assert get_args(literal) == tuple(s.value for s in EndpointState)


def test_pause_holds_new_events_and_resume_lets_them_go(api: Api) -> None:
    ep = _add(api)
    assert (ep["state"], ep["state_since"], ep["rate_limit"], ep["max_in_flight"]) == (
        "active",
        None,
        None,
        None,
    )
    assert ep["replay_on_recovery"] is True
    api.clock.advance(10)
    paused = assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/pause"))
    assert paused["state"] == "paused"
    assert paused["state_since"] == rfc3339(api.platform.clock.now())
    EndpointOut.model_validate(paused)
    # Pausing again changes nothing (idempotent), and new events are accepted.
    before = _snapshot(api)
    assert assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/pause")) == paused
    assert _snapshot(api) == before
    published = publish_sample(api.platform, api.account.id, "outgoing_call_end")
    assert published.delivery_id is not None
    with api.platform.db.read() as conn:
        waiting = conn.execute(
            select(deliveries.c.status).where(deliveries.c.endpoint_id == ep["id"])
        ).scalars()
        assert list(waiting) == ["pending"]
    listed = assert_success(api.get("/api/v2/endpoints"))
    assert [e["state"] for e in listed if e["id"] == ep["id"]] == ["paused"]

    api.clock.advance(5)
    resumed = assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/resume"))
    assert resumed["state"] == "active"
    assert resumed["state_since"] > paused["state_since"]
    assert _log(api, ep["id"]) == [("active", "paused", "paused"), ("paused", "active", "resumed")]
    # Resuming an active endpoint changes nothing.
    before = _snapshot(api)
    assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/resume"))
    assert _snapshot(api) == before


def test_pausing_unknown_foreign_or_deleted_endpoints_is_404_with_nothing_changed(
    api: Api,
) -> None:
    other = make_account(api.platform, url="https://127.0.0.1:7000/b", name="Other Co")
    other_token = make_token(api.platform, other.id, ALL)
    ep = _add(api)
    gone = _add(api, url=DESK)
    assert_success(api.delete(f"/api/v2/endpoints/{gone['id']}"))
    before = _snapshot(api)
    for action in ("pause", "resume"):
        for endpoint_id, token in (
            (ep["id"], other_token),  # another account's: as if it did not exist
            (gone["id"], None),
            ("ep_01JH8Z00000000000000000000", None),
        ):
            path = f"/api/v2/endpoints/{endpoint_id}/{action}"
            doc = assert_error(api.post(path, headers=api.auth(token)), 404, path)
            assert doc["errors"] == [f"Endpoint '{endpoint_id}' not found."]
    assert _snapshot(api) == before


def test_pause_and_resume_need_endpoints_write_and_take_no_body(api: Api) -> None:
    ep = _add(api)
    weak = make_token(api.platform, api.account.id, BOTH)
    before = _snapshot(api)
    for action in ("pause", "resume"):
        path = f"/api/v2/endpoints/{ep['id']}/{action}"
        doc = assert_error(api.post(path, headers=api.auth(weak)), 403, path)
        assert doc["errors"] == ["This token lacks the required scope 'endpoints.write'."]
        assert_error(api.post(path, json={"state": "paused"}), 400, path)
    assert _snapshot(api) == before


def test_a_disabled_endpoint_is_not_paused_but_resumed(api: Api) -> None:
    ep = _add(api, enabled=False)
    assert (ep["state"], ep["enabled"]) == ("disabled", False)
    before = _snapshot(api)
    path = f"/api/v2/endpoints/{ep['id']}/pause"
    doc = assert_error(api.post(path), 409, path)
    assert "resume it" in doc["errors"][0]
    assert _snapshot(api) == before
    resumed = assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/resume"))
    assert (resumed["state"], resumed["enabled"]) == ("active", True)
    # Switching it off by hand through PATCH is the same state.
    off = assert_success(_patch(api, ep["id"], {"enabled": False}))
    assert (off["state"], off["enabled"]) == ("disabled", False)
    on = assert_success(_patch(api, ep["id"], {"enabled": True}))
    assert (on["state"], on["enabled"]) == ("active", True)
    assert [cause for _, _, cause in _log(api, ep["id"])] == [
        "disabled_by_hand",
        "resumed",
        "disabled_by_hand",
        "resumed",
    ]


def test_throttling_fields_are_set_shown_and_cleared(api: Api) -> None:
    ep = _add(api, rate_limit=50, max_in_flight=4, replay_on_recovery=False)
    assert (ep["rate_limit"], ep["max_in_flight"], ep["replay_on_recovery"]) == (50, 4, False)
    changed = assert_success(_patch(api, ep["id"], {"rate_limit": 2.5}))
    assert (changed["rate_limit"], changed["max_in_flight"]) == (2.5, 4)  # the other stays
    assert changed["replay_on_recovery"] is False
    changed = assert_success(
        _patch(
            api, ep["id"], {"rate_limit": None, "max_in_flight": None, "replay_on_recovery": True}
        )
    )
    assert (changed["rate_limit"], changed["max_in_flight"]) == (None, None)
    assert changed["replay_on_recovery"] is True
    assert assert_success(api.get(f"/api/v2/endpoints/{ep['id']}")) == changed


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"rate_limit": 1e-300}, "rate_limit"),  # a wait no clock can hold
        ({"rate_limit": 0.009}, "rate_limit"),  # below one delivery every 100 s
        ({"rate_limit": 1000.5}, "rate_limit"),  # above the operator's cap (1000)
        ({"rate_limit": "50"}, "rate_limit"),
        ({"rate_limit": True}, "rate_limit"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 65}, "max_in_flight"),  # above the operator's cap (64)
        ({"max_in_flight": 1.5}, "max_in_flight"),
        ({"replay_on_recovery": None}, "replay_on_recovery"),
        ({"replay_on_recovery": "yes"}, "replay_on_recovery"),
        ({"rate_limit": 10, "max_in_flight": -3}, "max_in_flight"),  # nothing half-written
        ({"description": "new", "rate_limit": 0}, "rate_limit"),
    ],
)
def test_bad_throttling_fields_are_422_naming_the_field_with_nothing_changed(
    api: Api, body: dict[str, Any], field: str
) -> None:
    ep = _add(api, rate_limit=5)
    before = _snapshot(api)
    path = f"/api/v2/endpoints/{ep['id']}"
    doc = assert_error(_patch(api, ep["id"], body), 422, path)
    assert doc["errors"][0].startswith(f"{field}: ")
    assert _snapshot(api) == before
    # And on create: nothing added.
    doc = assert_error(
        api.post("/api/v2/endpoints", json={"url": DESK, "subscribed_events": None, **body}), 422
    )
    assert doc["errors"][0].startswith(f"{field}: ")
    assert _snapshot(api) == before


def test_the_operators_cap_is_a_setting(tmp_path: Path) -> None:
    with running_api(tmp_path, endpoint_rate_limit_cap=20.0) as api:
        api.token = make_token(api.platform, api.account.id, ALL)
        doc = assert_error(
            api.post(
                "/api/v2/endpoints", json={"url": CRM, "subscribed_events": None, "rate_limit": 21}
            ),
            422,
        )
        assert doc["errors"][0] == (
            "rate_limit: must be null (no limit) or a number of deliveries per second from 0.01 "
            "to 20"
        )
        assert _add(api, rate_limit=20)["rate_limit"] == 20


def _make_failing(api: Api, endpoint_id: str) -> None:
    rules = endpoint_health.rules_from(api.platform.settings)
    now = api.platform.clock.now()
    with api.platform.db.write() as conn:
        endpoint_health.record(
            conn,
            [
                endpoint_health.Verdict(endpoint_id, api.account.id, AttemptVerdict.FAILURE, now)
                for _ in range(rules.policy.failure_threshold)
            ],
            now=now,
            rules=rules,
        )


def test_a_failing_endpoint_shows_its_next_probe_and_disable_deadline(api: Api) -> None:
    ep = _add(api)
    _make_failing(api, ep["id"])
    shown = assert_success(api.get(f"/api/v2/endpoints/{ep['id']}"))
    now = api.platform.clock.now()
    assert shown["state"] == "failing"
    assert shown["failing_since"] == shown["state_since"] == rfc3339(now)
    assert shown["next_probe_at"] == rfc3339(now + timedelta(seconds=30))
    assert shown["disable_at"] == rfc3339(now + timedelta(days=5))
    EndpointOut.model_validate(shown)
    # A new URL: the customer fixed it, active again at once.
    api.clock.advance(60)
    fixed = assert_success(_patch(api, ep["id"], {"url": DESK}))
    assert fixed["state"] == "active"
    assert (fixed["failing_since"], fixed["next_probe_at"], fixed["disable_at"]) == (
        None,
        None,
        None,
    )
    assert _log(api, ep["id"])[-1] == ("failing", "active", "url_changed")


def test_resuming_a_failing_endpoint_makes_it_active(api: Api) -> None:
    ep = _add(api)
    _make_failing(api, ep["id"])
    resumed = assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/resume"))
    assert (resumed["state"], resumed["next_probe_at"]) == ("active", None)
    paused = assert_success(api.post(f"/api/v2/endpoints/{ep['id']}/pause"))
    assert paused["state"] == "paused"
