"""Every form is refused (403, nothing changed) without this session's CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callhook.store import deliveries as delivery_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
from callhook.store.tables import deliveries, events, web_sessions
from tests.factories import publish_sample
from tests.integration.dashboard.site import (
    Site,
    csrf_of,
    make_site,
    make_user,
    page_token,
    sign_in,
)


def _snapshot(site: Site, account_id: str) -> tuple[object, ...]:
    now = site.clock.now()
    with site.platform.db.read() as conn:
        return (
            integration_store.get(conn, account_id),
            [
                s.id
                for s in integration_store.active_secrets(
                    conn, account_id, now=now, box=site.platform.box
                )
            ],
            [(t.id, t.revoked_at) for t in token_store.list_for(conn, account_id)],
            [(d.id, d.status) for d in delivery_store.list_deliveries(conn, account_id=account_id)],
            conn.execute(events.select()).all(),
            len(conn.execute(web_sessions.select()).all()),
            conn.execute(deliveries.select()).all(),
        )


def _forms(delivery_id: str, token_id: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/dashboard/webhook", {"url": "https://8.8.8.8/other", "retry_policy": "none"}),
        ("/dashboard/secret/rotate", {}),
        ("/dashboard/secret/reveal", {}),
        ("/dashboard/test", {}),
        (f"/dashboard/deliveries/{delivery_id}/redeliver", {}),
        ("/dashboard/deliveries/redeliver-failed", {"since": "2020-01-01T00:00"}),
        ("/dashboard/tokens", {"name": "x", "scopes": "events.write", "expires": "7"}),
        (f"/dashboard/tokens/{token_id}/revoke", {}),
        ("/dashboard/signout", {}),
    ]


@pytest.mark.parametrize(
    "token_of",
    [
        pytest.param(lambda real: None, id="missing"),
        pytest.param(lambda real: "", id="empty"),
        pytest.param(lambda real: real[:-1] + ("A" if real[-1] != "A" else "B"), id="wrong"),
    ],
)
def test_forms_without_the_right_token_are_refused_and_change_nothing(
    tmp_path: Path, token_of: Callable[[str], str | None]
) -> None:
    site = make_site(tmp_path)
    account_id = make_user(site, email="ana@example.com")
    published = publish_sample(site.platform, account_id)
    assert published.delivery_id is not None
    with site.platform.db.write() as conn:
        conn.execute(deliveries.update().values(status="failed", next_attempt_at=None))
        token, _ = token_store.create(
            conn,
            account_id=account_id,
            scopes=["events.write"],
            now=site.clock.now(),
            rng=site.platform.rng,
        )
    sign_in(site.client, "ana@example.com")
    real = page_token(site.client)
    before = _snapshot(site, account_id)
    for path, data in _forms(published.delivery_id, token.id):
        sent = dict(data)
        forged = token_of(real)
        if forged is not None:
            sent["csrf_token"] = forged
        response = site.client.post(path, data=sent, follow_redirects=False)
        assert response.status_code == 403, path
        assert "nothing was changed" in response.text
        assert "whsec_" not in response.text
    assert _snapshot(site, account_id) == before
    # Still signed in: the forged sign-out did nothing either.
    assert site.client.get("/dashboard", follow_redirects=False).status_code == 200


def test_the_right_token_is_accepted(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    account_id = make_user(site, email="ana@example.com")
    sign_in(site.client, "ana@example.com")
    response = site.client.post(
        "/dashboard/secret/rotate", data={"csrf_token": page_token(site.client)}
    )
    assert response.status_code == 200
    with site.platform.db.read() as conn:
        active = integration_store.active_secrets(
            conn, account_id, now=site.clock.now(), box=site.platform.box
        )
    assert len(active) == 2


def test_another_sessions_token_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    make_user(site, email="bo@example.com")
    sign_in(site.client, "ana@example.com")
    other: TestClient = site.new_client()
    sign_in(other, "bo@example.com")
    response = site.client.post("/dashboard/secret/rotate", data={"csrf_token": page_token(other)})
    assert response.status_code == 403


def test_sign_in_form_needs_its_token(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    form = site.client.get("/dashboard/signin")
    real = csrf_of(form.text)
    for forged in ("", "x" * 40, None):
        data = {"email": "ana@example.com", "password": "correct horse battery"}
        if forged is not None:
            data["csrf_token"] = forged
        response = site.client.post("/dashboard/signin", data=data, follow_redirects=False)
        assert response.status_code == 403
    # A login-CSRF attempt from another browser: right-looking token, no matching cookie.
    attacker = site.new_client()
    response = attacker.post(
        "/dashboard/signin",
        data={"email": "ana@example.com", "password": "correct horse battery", "csrf_token": real},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "callhook_session" not in attacker.cookies
