"""Deliveries, redelivery, the test event and the events of one call, through the API."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import update

from callhook.core.outcome import ErrorClass
from callhook.events import call_scenario
from callhook.publish import PublishRequest
from callhook.store import deliveries as delivery_store
from callhook.store import endpoints as endpoint_store
from callhook.store import integrations as integration_store
from callhook.store import ordering as line_store
from callhook.store.tables import deliveries
from tests.factories import attempt_due, make_account, publish_sample
from tests.integration.api.helpers import Api, assert_error, assert_success, running_api

LIST = "/api/v2/webhooks/deliveries"


def _publish(api: Api, n: int, event: str = "incoming_call_start") -> list[str]:
    """Publish ``n`` events one second apart; their delivery ids, oldest first."""
    ids = []
    for seed in range(n):
        published = publish_sample(api.platform, api.account.id, event, seed=seed)
        assert published.delivery_id is not None
        ids.append(published.delivery_id)
        api.clock.advance(1)
    return ids


def _sweep_lines(api: Api) -> None:
    """What a worker's line sweep does each second (settles the calls a requeue left)."""
    with api.platform.db.write() as conn:
        line_store.sweep(conn, now=api.clock.now(), policies=line_store.policies(conn))


def _fail(api: Api, delivery_ids: list[str]) -> None:
    """Attempt these deliveries once each, recording a final 500 (as the worker would)."""
    now = api.clock.now()
    with api.platform.db.write() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.not_in(delivery_ids))
            .values(next_attempt_at=now + timedelta(days=1))
        )
    jobs = attempt_due(
        api.platform,
        status=500,
        duration_ms=12.5,
        response_body=lambda _: "oops",
        request_headers=lambda _: b'{"Content-Type": "application/json"}',
    )
    with api.platform.db.write() as conn:
        conn.execute(
            update(deliveries).where(deliveries.c.status == "pending").values(next_attempt_at=now)
        )
    assert {job.delivery_id for job in jobs} == set(delivery_ids)


def test_cursor_pagination_walks_every_delivery_once_newest_first(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        ids = _publish(api, 7)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            data = assert_success(api.get(LIST, params=params))
            seen += [d["id"] for d in data["deliveries"]]
            pages += 1
            cursor = data["next_cursor"]
            if cursor is None:
                break
    assert pages == 3
    assert seen == list(reversed(ids))


def test_exact_page_has_no_next_cursor(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        _publish(api, 3)
        data = assert_success(api.get(LIST, params={"limit": 3}))
    assert len(data["deliveries"]) == 3
    assert data["next_cursor"] is None


def test_filters_combine(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        start = api.clock.now()
        ids = _publish(api, 4)
        end_ids = _publish(api, 2, "incoming_call_end")
        _fail(api, [ids[1], end_ids[0]])

        def listed(**params: str) -> list[str]:
            data = assert_success(api.get(LIST, params=params))
            return [d["id"] for d in data["deliveries"]]

        assert listed(status="failed") == [end_ids[0], ids[1]]
        assert listed(status="failed", event="incoming_call_end") == [end_ids[0]]
        assert listed(event="incoming_call_end") == list(reversed(end_ids))
        window = {
            "since": (start + timedelta(seconds=1)).isoformat(),
            "until": (start + timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
        }
        assert listed(**window) == [ids[2], ids[1]]
        with api.platform.db.read() as conn:
            pbx = delivery_store.get(conn, ids[3]).pbx_id
        assert ids[3] in listed(pbx_id=pbx)
        assert listed(pbx_id="no-such-call") == []


def test_summary_shape(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        [dlv] = _publish(api, 1)
        [item] = assert_success(api.get(LIST))["deliveries"]
    assert item["id"] == dlv
    assert item["status"] == "pending"
    assert item["attempts"] == 0
    assert item["created_at"] == "2026-01-15T10:30:00.000Z"
    assert item["event"] == "incoming_call_start"
    assert item["event_id"].startswith("evt_")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"cursor": "not-a-cursor"}, 422),
        ({"cursor": "dlv_x"}, 422),
        ({"cursor": "dlv_01KF0K8Y20PDDGMEPHX7DTC6DU"}, 422),  # U is no Crockford digit
        ({"cursor": "dlv_7ZZZZZZZZZ0000000000000000"}, 422),  # an id's shape, a time past 9999
        ({"event": "invalid_event"}, 400),
        ({"limit": 0}, 422),
        ({"limit": 101}, 422),
        ({"limit": "ten"}, 422),
        ({"status": "lost"}, 422),
        ({"since": "yesterday"}, 422),
        ({"until": "1700000000"}, 422),
        ({"pbx_id": "x" * 201}, 422),
    ],
)
def test_bad_list_parameters(tmp_path: Path, params: dict[str, object], status: int) -> None:
    with running_api(tmp_path) as api:
        assert_error(api.get(LIST, params=params), status, LIST)


def test_detail_has_request_body_and_attempts(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        [dlv] = _publish(api, 1)
        _fail(api, [dlv])
        data = assert_success(api.get(f"{LIST}/{dlv}"))
        with api.platform.db.read() as conn:
            body = delivery_store.get(conn, dlv).body
    assert data["status"] == "failed"
    assert data["attempts"] == 1
    assert data["last_status_code"] == 500
    assert body is not None
    assert data["request_body"] == orjson.loads(body)
    assert data["attempt_log"] == [
        {
            "number": 1,
            "started_at": "2026-01-15T10:30:01.000Z",
            "duration_ms": 12.5,
            "status_code": 500,
            "response_body": "oops",
            "error_class": "http_status",
            "error_message": "HTTP 500",
            "request_headers": {"Content-Type": "application/json"},
        }
    ]


def test_unknown_delivery_is_404(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        path = f"{LIST}/dlv_01KF0K8Y20PDDGMEPHX7DTC6DB"
        doc = assert_error(api.get(path), 404, path)
    assert doc["errors"] == ["Delivery 'dlv_01KF0K8Y20PDDGMEPHX7DTC6DB' not found."]


def test_redeliver_one_queues_a_failed_delivery_again(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        [dlv] = _publish(api, 1)
        _fail(api, [dlv])
        api.clock.advance(60)
        data = assert_success(api.post(f"{LIST}/{dlv}/redeliver"), 202)
        assert data["status"] == "pending"
        assert data["next_attempt_at"] == "2026-01-15T10:31:01.000Z"
        again = assert_success(api.post(f"{LIST}/{dlv}/redeliver"), 202)
    assert again == data  # a pending delivery is left as it is


def test_window_redelivery_queues_only_the_window(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        start = api.clock.now()
        ids = _publish(api, 4)
        _fail(api, ids)
        body = {
            "since": (start + timedelta(seconds=1)).isoformat(),
            "until": (start + timedelta(seconds=3)).isoformat(),
        }
        data = assert_success(api.post(f"{LIST}/redeliver", json=body), 202)
        assert data == {"queued": 2}
        statuses = [d["status"] for d in assert_success(api.get(LIST))["deliveries"]]
        # Call events to an endpoint that orders per call wait for a worker's line sweep,
        # which gives each call to its lowest sequence (here each call has one).
        _sweep_lines(api)
        swept = [d["status"] for d in assert_success(api.get(LIST))["deliveries"]]
        delivered = {"since": start.isoformat(), "status": "delivered"}
        none = assert_success(api.post(f"{LIST}/redeliver", json=delivered), 202)
    assert statuses == ["failed", "waiting", "waiting", "failed"]
    assert swept == ["failed", "pending", "pending", "failed"]
    assert none == {"queued": 0}


def test_window_redelivery_takes_expired_deliveries_by_their_own_status(tmp_path: Path) -> None:
    # Expired (issue 14) is finished like failed and delivered, and redelivered on request.
    with running_api(tmp_path) as api:
        start = api.clock.now()
        ids = _publish(api, 2)
        attempt_due(api.platform, status=None, error_class=ErrorClass.EXPIRED, retry_in=None)
        before = sorted(d["status"] for d in assert_success(api.get(LIST))["deliveries"])
        window = {"since": start.isoformat()}
        failed = assert_success(api.post(f"{LIST}/redeliver", json=window), 202)
        expired = {**window, "status": "expired"}
        queued = assert_success(api.post(f"{LIST}/redeliver", json=expired), 202)
        again = assert_success(api.post(f"{LIST}/redeliver", json=expired), 202)
        after = {d["id"]: d["status"] for d in assert_success(api.get(LIST))["deliveries"]}
    assert before == ["expired", "expired"]
    assert failed == {"queued": 0}
    assert queued == {"queued": 2}
    assert again == {"queued": 0}
    assert sorted(after) == sorted(ids)
    assert set(after.values()) <= {"pending", "waiting"}


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"since": "2026-01-01T00:00:00Z"}', "text/plain", 415),
        (b"since=2026-01-01", "application/x-www-form-urlencoded", 415),
        (b"{", "application/json", 400),
        (b"[]", "application/json", 400),
        (b"{}", "application/json", 422),
        (b'{"since": "2026-01-01T00:00:00Z", "extra": 1}', "application/json", 422),
        (b'{"since": "2026-01-01T00:00:00Z", "status": "pending"}', "application/json", 422),
        (b'{"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}', None, 422),
        (b'{"since": "2030-01-01T00:00:00Z"}', None, 422),  # until: now, before since
        (b'{"since": "' + b"x" * 20_000 + b'"}', "application/json", 413),
    ],
)
def test_bad_window_bodies_change_nothing(
    tmp_path: Path, content: bytes, content_type: str | None, status: int
) -> None:
    with running_api(tmp_path) as api:
        ids = _publish(api, 2)
        _fail(api, ids)
        headers = api.auth()
        if content_type:
            headers["Content-Type"] = content_type
        response = api.post(f"{LIST}/redeliver", content=content, headers=headers)
        assert_error(response, status, f"{LIST}/redeliver")
        data = assert_success(api.get(LIST))
    assert [d["status"] for d in data["deliveries"]] == ["failed", "failed"]


def test_test_event_is_queued_even_while_disabled(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        with api.platform.db.write() as conn:
            integration_store.set_enabled(conn, api.account.id, False, now=api.clock.now())
        data = assert_success(api.post("/api/v2/webhooks/test"), 202)
        detail = assert_success(api.get(f"{LIST}/{data['delivery_id']}"))
    assert data["event"] == "test"
    assert data["delivery_id"].startswith("dlv_")
    assert detail["event"] == "test"
    assert detail["event_id"] == data["event_id"]
    assert detail["request_body"]["event"] == "test"


def test_events_of_one_call_in_sequence_order(tmp_path: Path) -> None:
    with running_api(tmp_path, events=("incoming_call_start", "incoming_call_end")) as api:
        call = call_scenario("answered", random.Random(7), start=api.clock.now())
        for item in call:
            api.platform.publisher.publish(
                [PublishRequest(item.event, item.pbx_id, api.account.id, item.data)]
            )
        call_id = call[0].data["call_id"]
        url = f"/api/v2/webhooks/events/{call_id}"
        queued = assert_success(api.get(url))
        attempt_due(api.platform)  # the start is delivered; the end's turn comes
        attempt_due(api.platform, status=500, retry_in=timedelta(minutes=1))
        retrying = assert_success(api.get(url))
        api.clock.advance(61)
        attempt_due(api.platform, status=500)  # the end fails for good
        data = assert_success(api.get(url))
        other = assert_success(api.get("/api/v2/webhooks/events/no-such-call"))
    assert [e["event"] for e in data] == [item.event for item in call]
    assert [e["sequence"] for e in data] == list(range(1, len(call) + 1))
    assert all(e["call_id"] == call_id for e in data)
    taken = {"incoming_call_start", "incoming_call_end"}
    # Queued, not yet sent: nothing has reached the receiver.
    assert not any(e["delivered_to_you"] for e in queued)
    statuses = {e["event"]: [d["status"] for d in e["deliveries"]] for e in queued}
    assert statuses["incoming_call_start"] == ["pending"]
    assert statuses["incoming_call_end"] == ["waiting"]  # behind the start (per-call order)
    end = next(e for e in retrying if e["event"] == "incoming_call_end")
    assert (end["delivered_to_you"], [d["status"] for d in end["deliveries"]]) == (
        False,
        ["retrying"],
    )
    # Delivered, failed, and never made.
    by_event = {e["event"]: e for e in data}
    assert by_event["incoming_call_start"]["delivered_to_you"] is True
    assert [d["status"] for d in by_event["incoming_call_start"]["deliveries"]] == ["delivered"]
    assert by_event["incoming_call_end"]["delivered_to_you"] is False
    assert [d["status"] for d in by_event["incoming_call_end"]["deliveries"]] == ["failed"]
    assert by_event["incoming_call_end"]["deliveries"][0]["endpoint_id"].startswith("ep_")
    for e in data:
        if e["event"] not in taken:
            assert (e["delivered_to_you"], e["skip_reason"], e["deliveries"]) == (
                False,
                "not_subscribed",
                [],
            )
    assert data[0]["body"]["id"] == data[0]["id"]
    assert other == []


def test_retrying_filter_lists_pending_deliveries_already_attempted(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        ids = _publish(api, 3)
        _fail(api, [ids[0]])  # failed for good
        [job] = attempt_due(
            api.platform,
            status=None,
            error_class=ErrorClass.TIMEOUT,
            retry_in=timedelta(minutes=4),
            duration_ms=2000.0,
            limit=1,
        )
        retrying = assert_success(api.get(LIST, params={"status": "retrying"}))["deliveries"]
        pending = assert_success(api.get(LIST, params={"status": "pending"}))["deliveries"]
    assert [d["id"] for d in retrying] == [job.delivery_id]
    assert retrying[0]["attempts"] == 1
    assert retrying[0]["next_attempt_at"] is not None
    assert {d["id"] for d in pending} == set(ids[1:])


def test_window_redelivery_can_take_one_endpoint_only(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:
        start = api.clock.now()
        with api.platform.db.write() as conn:
            crm = endpoint_store.create(
                conn,
                api.account.id,
                url="https://crm.example.com/hook",
                subscribed_events=None,
                limit=20,
                now=start,
                box=api.platform.box,
                rng=api.platform.rng,
            )
        stranger = make_account(api.platform, url="https://other.example.com/hook")
        with api.platform.db.read() as conn:
            theirs = endpoint_store.primary(conn, stranger.id)
            primary = endpoint_store.primary(conn, api.account.id)
        assert theirs is not None
        assert primary is not None
        ids: list[str] = []
        for seed in range(2):
            published = publish_sample(
                api.platform, api.account.id, "incoming_call_start", seed=seed
            )
            ids += published.delivery_ids
            api.clock.advance(1)
        assert len(ids) == 4  # each event to both endpoints
        _fail(api, ids)
        body = {"since": start.isoformat(), "endpoint_id": theirs.id}
        assert_error(api.post(f"{LIST}/redeliver", json=body), 404)
        body["endpoint_id"] = crm.id
        data = assert_success(api.post(f"{LIST}/redeliver", json=body), 202)
        _sweep_lines(api)
        listed = assert_success(api.get(LIST))["deliveries"]
    assert data == {"queued": 2}
    statuses: dict[str, set[str]] = {}
    for d in listed:
        statuses.setdefault(d["endpoint_id"], set()).add(d["status"])
    assert statuses == {crm.id: {"pending"}, primary.id: {"failed"}}
