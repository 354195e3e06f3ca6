"""``IngestFastPath`` answers exactly as the FastAPI route does: every status, header and body
(request ids, times and new event ids aside), for good publishes and every kind of refusal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from callhook.api import ingest
from callhook.api.app import create_app
from callhook.platform import Platform
from callhook.store.tables import api_tokens
from callhook.store.tokens import hash_token
from tests.factories import AccountInfo, make_account, make_platform, make_token, sample_event

URL = "/internal/v1/events"


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return make_platform(tmp_path)


@pytest.fixture
def account(platform: Platform) -> AccountInfo:
    return make_account(platform, url="https://hooks.example.com/callhook")


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each publish handled: whether FastAPI routed it (its route sets ``scope["route"]``)."""
    seen: list[bool] = []
    handle = ingest.handle_publish

    async def spy(request: Any) -> Any:
        seen.append("route" in request.scope)
        return await handle(request)

    monkeypatch.setattr(ingest, "handle_publish", spy)
    return seen


@pytest.fixture
def clients(platform: Platform) -> Iterator[tuple[TestClient, TestClient]]:
    fast = create_app(platform.settings, platform=platform)
    plain = create_app(platform.settings, platform=platform, fast_ingest=False)
    with TestClient(fast) as a, TestClient(plain) as b:
        yield a, b


def _token(platform: Platform, account: AccountInfo, kind: str) -> str:
    if kind == "platform":
        return make_token(platform, None, ["events.write"])
    if kind == "account":
        return make_token(platform, account.id, ["events.write"])
    if kind == "wrong scope":
        return make_token(platform, account.id, ["webhooks.read"])
    token = make_token(platform, None, ["events.write"])
    now = platform.clock.now()
    change = {"revoked_at": now} if kind == "revoked" else {"expires_at": now - timedelta(days=1)}
    with platform.db.write() as conn:
        conn.execute(
            update(api_tokens).where(api_tokens.c.token_hash == hash_token(token)).values(**change)
        )
    return token


Case = Callable[[Platform, AccountInfo], tuple[dict[str, str], bytes]]


def _json(token_kind: str | None, body: Any, **headers: str) -> Case:
    def make(platform: Platform, account: AccountInfo) -> tuple[dict[str, str], bytes]:
        h = {"Content-Type": "application/json", **headers}
        if token_kind is not None:
            h["Authorization"] = f"Bearer {_token(platform, account, token_kind)}"
        doc = body(account) if callable(body) else body
        return h, doc if isinstance(doc, bytes) else orjson.dumps(doc)

    return make


def _event(account: AccountInfo, **change: Any) -> dict[str, Any]:
    return {**sample_event(account_id=account.id), **change}


def _no_account(account: AccountInfo) -> dict[str, Any]:
    return {k: v for k, v in sample_event(account_id=account.id).items() if k != "account_id"}


def _bad_payload(account: AccountInfo) -> dict[str, Any]:
    item = sample_event(account_id=account.id)
    item["data"]["caller"] = "not-a-number"
    return item


CASES: dict[str, Case] = {
    "one event": _json("platform", _event),
    "a batch": _json("platform", lambda a: {"events": [_event(a), _event(a)]}),
    "account token": _json("account", _no_account),
    "a duplicate": _json("platform", lambda a: _event(a, idempotency_key="known")),
    "no token": _json(None, _event),
    "not bearer": _json(None, _event, Authorization="Basic dXNlcjpwYXNz"),
    "unknown token": _json(None, _event, Authorization="Bearer chk_not-a-real-token"),
    "revoked token": _json("revoked", _event),
    "expired token": _json("expired", _event),
    "wrong scope": _json("wrong scope", _event),
    "bad token and bad body": _json(None, b"{", Authorization="Bearer chk_nope"),
    "wrong scope and bad body": _json("wrong scope", b"{"),
    "wrong content type": _json("platform", _event, **{"Content-Type": "text/plain"}),
    "too large": _json("platform", b'{"pad": "' + b"x" * (257 * 1024) + b'"}'),
    "malformed JSON": _json("platform", b'{"event": "sms", '),
    "not an object": _json("platform", [1, 2]),
    "empty batch": _json("platform", {"events": []}),
    "unknown event": _json("platform", lambda a: _event(a, event="no_such_event")),
    "bad payload": _json("platform", _bad_payload),
    "platform token without account": _json("platform", _no_account),
    "unknown account": _json("platform", lambda a: _event(a, account_id="acc_nope")),
    "another account": _json("account", lambda a: _event(a, account_id="acc_other")),
}


def _normalized(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id")}
    doc = response.json()
    assert doc["request_id"] == response.headers["x-request-id"]
    doc["request_id"] = doc["timestamp"] = "-"
    for result in doc.get("data", {}).get("events", []):
        if not result["duplicate"]:
            result["id"] = result["id"][:4]
            result["delivery_id"] = result["delivery_id"] and result["delivery_id"][:4]
            result["delivery_ids"] = [d[:4] for d in result.get("delivery_ids", [])]
    return response.status_code, headers, doc


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_answers_as_the_route(
    clients: tuple[TestClient, TestClient],
    platform: Platform,
    account: AccountInfo,
    routed: list[bool],
    case: str,
) -> None:
    fast, plain = clients
    if case == "a duplicate":
        headers, body = _json("platform", lambda a: _event(a, idempotency_key="known"))(
            platform, account
        )
        assert plain.post(URL, content=body, headers=headers).status_code == 202
        routed.clear()
    headers, body = CASES[case](platform, account)
    a = fast.post(URL, content=body, headers=headers)
    b = plain.post(URL, content=body, headers=headers)
    assert _normalized(a) == _normalized(b)
    assert routed == [False, True]  # the fast path answered the first, FastAPI the second


def test_repeated_failures_are_limited_alike(
    clients: tuple[TestClient, TestClient], platform: Platform, account: AccountInfo
) -> None:
    fast, plain = clients
    body = orjson.dumps(sample_event(account_id=account.id))
    answers: list[list[tuple[int, str | None]]] = []
    for client in (fast, plain):
        seen = []
        for n in range(14):
            token = "chk_same-bad-token" if n % 2 else f"chk_bad-{n}"
            r = client.post(URL, content=body, headers={"Authorization": f"Bearer {token}"})
            seen.append((r.status_code, r.headers.get("retry-after")))
        answers.append(seen)
    assert answers[0] == answers[1]
    assert {status for status, _ in answers[0]} == {401, 429}
