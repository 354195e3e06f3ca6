"""Sign-in and sign-out.

Contracts
---------
* The sign-in form carries a CSRF token bound to a short-lived HttpOnly cookie (double submit),
  so another site cannot sign a browser into an account of its choosing.
* A failed sign-in is recorded under the email and under the client address. While either has
  :data:`EMAIL_LIMIT` / :data:`ADDRESS_LIMIT` failures within :data:`THROTTLE_WINDOW`, sign-in is
  refused with 429 *before* the password is checked (a right password does not help then).
  Counting and checking are one atomic step (``web_sessions.reserve_attempt``): the attempt is
  recorded as a failure before the password is checked and forgiven when it is right, so
  parallel attempts cannot check more than the limit of passwords.
* The same message answers an unknown email and a wrong password.
* Success starts a server-side session (see :mod:`callhook.store.web_sessions`), sets the
  session cookie and forgets the email's failures. Sign-out deletes the session row.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.dashboard.auth import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    CheckedForm,
    CurrentViewer,
    DashboardRoute,
    clear_cookie,
    error_page,
    platform_of,
    safe_next,
    set_cookie,
    text,
)
from callhook.dashboard.render import page
from callhook.errors import InvalidRequest
from callhook.store import users as user_store
from callhook.store import web_sessions as session_store

router = APIRouter(route_class=DashboardRoute)

EMAIL_LIMIT = 5
ADDRESS_LIMIT = 20
THROTTLE_WINDOW = session_store.THROTTLE_WINDOW
_SIGNIN_COOKIE_AGE = 3600


def _signin_form(
    request: Request,
    *,
    token: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    notice: str | None = None,
    target: str | None = None,
) -> Response:
    response = page(
        request,
        "signin.html",
        {
            "signin_token": token,
            "email": email,
            "error": error,
            "notice": notice,
            "next": safe_next(target or request.query_params.get("next")),
        },
        status=status,
    )
    set_cookie(response, request, SIGNIN_COOKIE, token, max_age=_SIGNIN_COOKIE_AGE)
    return response


@router.get("/signin")
def signin_page(request: Request) -> Response:
    token = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    notice = "You have signed out." if request.query_params.get("signed_out") else None
    return _signin_form(request, token=token[:100], notice=notice)


def _keys(request: Request, email: str) -> tuple[str, str]:
    try:
        normalized = user_store.normalize_email(email)
    except InvalidRequest:
        normalized = email.strip().lower()
    address = request.client.host if request.client else "unknown"
    return f"email:{normalized}", f"ip:{address}"


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not session_store.csrf_matches(expected, text(form, "csrf_token")):
        return error_page(
            request,
            403,
            "Form expired",
            "The sign-in form had expired, so nothing was done. Reload the page and sign in.",
        )
    email = text(form, "email", limit=320)
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    return await run_in_threadpool(_signin, request, expected, email, password, text(form, "next"))


def _signin(request: Request, token: str, email: str, password: str, target: str) -> Response:
    platform = platform_of(request)
    now = platform.clock.now()
    email_key, address_key = _keys(request, email)
    with platform.db.write() as conn:
        reserved = session_store.reserve_attempt(
            conn, [(email_key, EMAIL_LIMIT), (address_key, ADDRESS_LIMIT)], now=now
        )
    if reserved is None:
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        return _signin_form(
            request,
            token=token,
            email=email,
            status=429,
            error=f"Too many failed sign-ins. Wait {minutes} minutes, then try again.",
            target=target,
        )
    with platform.db.read() as conn:
        user = user_store.check_password(conn, email, password) if email and password else None
    if user is None:
        # The failure is already recorded (by the reservation).
        return _signin_form(
            request,
            token=token,
            email=email,
            status=401,
            error="Wrong email or password.",
            target=target,
        )
    with platform.db.write() as conn:
        # The email's key first (it is locked there): forgiving first held rows another
        # sign-in's clearing waited for while it held ours (a deadlock on PostgreSQL).
        session_store.clear_failures(conn, email_key)
        session_store.forgive(conn, reserved)
        cookie, _session = session_store.create(conn, user_id=user.id, now=now)
    response = RedirectResponse(safe_next(target), status_code=303)
    lifetime = int(session_store.SESSION_LIFETIME.total_seconds())
    set_cookie(response, request, SESSION_COOKIE, cookie, max_age=lifetime)
    clear_cookie(response, request, SIGNIN_COOKIE)
    return response


@router.post("/signout")
def signout(request: Request, who: CurrentViewer, _form: CheckedForm) -> Response:
    platform = platform_of(request)
    with platform.db.write() as conn:
        session_store.delete_session(conn, who.cookie)
    response = RedirectResponse("/dashboard/signin?signed_out=1", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


__all__ = ["ADDRESS_LIMIT", "COOKIE_PATH", "EMAIL_LIMIT", "THROTTLE_WINDOW", "router"]
