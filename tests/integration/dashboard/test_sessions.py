"""Sign-in sessions over plain HTTP: cookie flags, sign-out, expiry, throttling."""

from __future__ import annotations

from pathlib import Path

from callhook.dashboard.signin import ADDRESS_LIMIT, EMAIL_LIMIT, THROTTLE_WINDOW
from callhook.store import web_sessions
from callhook.store.tables import web_sessions as web_sessions_table
from tests.integration.dashboard.site import (
    PASSWORD,
    csrf_of,
    make_site,
    make_user,
    page_token,
    sign_in,
)


def _cookie_header(response_headers: list[tuple[str, str]], name: str) -> str:
    for key, value in response_headers:
        if key.lower() == "set-cookie" and value.startswith(name + "="):
            return value
    raise AssertionError(f"no Set-Cookie for {name}")


def test_pages_need_a_session(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    for path in ("/dashboard", "/dashboard/webhook", "/dashboard/deliveries", "/dashboard/tokens"):
        response = site.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/signin")


def test_session_cookie_is_httponly_lax_and_not_secure_over_http(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    response = sign_in(site.client, "ana@example.com")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = _cookie_header(response.headers.multi_items(), "callhook_session").lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/dashboard" in cookie
    assert "secure" not in cookie
    page = site.client.get("/dashboard")
    assert page.status_code == 200
    assert "ana@example.com" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_session_cookie_is_secure_over_https(tmp_path: Path) -> None:
    site = make_site(tmp_path, https=True)
    make_user(site, email="ana@example.com")
    response = sign_in(site.client, "ana@example.com")
    cookie = _cookie_header(response.headers.multi_items(), "callhook_session").lower()
    assert "; secure" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_only_a_hash_of_the_cookie_is_stored(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    sign_in(site.client, "ana@example.com")
    value = site.client.cookies["callhook_session"]
    with site.platform.db.read() as conn:
        stored = [r.id_hash for r in conn.execute(web_sessions_table.select())]
    assert len(stored) == 1
    assert value not in stored[0]
    assert stored[0] == web_sessions._digest(value)


def test_sign_out_invalidates_the_session_server_side(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    sign_in(site.client, "ana@example.com")
    stolen = site.client.cookies["callhook_session"]
    token = page_token(site.client)
    out = site.client.post("/dashboard/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"].startswith("/dashboard/signin")
    # Replaying the old cookie value (as a thief would) no longer opens the dashboard.
    other = site.new_client()
    other.cookies.set("callhook_session", stolen, path="/dashboard")
    replay = other.get("/dashboard", follow_redirects=False)
    assert replay.status_code == 303
    assert replay.headers["location"] == "/dashboard/signin"


def test_session_expires_after_its_lifetime(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    sign_in(site.client, "ana@example.com")
    assert site.client.get("/dashboard", follow_redirects=False).status_code == 200
    site.clock.advance(web_sessions.SESSION_LIFETIME.total_seconds() + 1)
    assert site.client.get("/dashboard", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_email_get_the_same_answer(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    wrong = sign_in(site.client, "ana@example.com", "not the password")
    unknown = sign_in(site.client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert "callhook_session" not in site.client.cookies


def test_failed_sign_ins_are_throttled_per_email(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    for _ in range(EMAIL_LIMIT):
        assert sign_in(site.client, "ana@example.com", "guess").status_code == 401
    # Even the right password is refused while throttled, without checking it.
    blocked = sign_in(site.client, "ana@example.com")
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    assert "callhook_session" not in site.client.cookies
    site.clock.advance(THROTTLE_WINDOW.total_seconds() + 1)
    assert sign_in(site.client, "ana@example.com").status_code == 303


def test_failed_sign_ins_are_throttled_per_client_address(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    for i in range(ADDRESS_LIMIT):
        assert sign_in(site.client, f"spray{i}@example.com", "guess").status_code == 401
    # A different email from the same address is throttled too.
    assert sign_in(site.client, "ana@example.com").status_code == 429


def test_success_forgets_earlier_failures_of_that_email(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    for _ in range(EMAIL_LIMIT - 1):
        sign_in(site.client, "ana@example.com", "guess")
    assert sign_in(site.client, "ana@example.com").status_code == 303
    fresh = site.new_client()
    for _ in range(EMAIL_LIMIT - 1):
        assert sign_in(fresh, "ana@example.com", "guess").status_code == 401
    assert sign_in(fresh, "ana@example.com").status_code == 303


def test_next_only_leads_inside_the_dashboard(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    for target, expected in (
        ("/dashboard/tokens", "/dashboard/tokens"),
        ("https://evil.example/", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
    ):
        client = site.new_client()
        form = client.get("/dashboard/signin")
        response = client.post(
            "/dashboard/signin",
            data={
                "email": "ana@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(form.text),
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected
