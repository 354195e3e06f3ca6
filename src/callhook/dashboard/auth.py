"""Who is looking: session cookies, CSRF checks and the dashboard's route class.

Contracts
---------
* :func:`viewer` (a dependency) turns the session cookie into a :class:`Viewer` or raises
  :class:`SignInRequired`; every page except sign-in depends on it, and every query a page makes
  is scoped to ``viewer.account_id`` (another account's delivery is "not found").
* :func:`checked_form` (a dependency for every POST) reads the form and raises
  :class:`CsrfRejected` unless its ``csrf_token`` field is the session's token; it runs before
  the route body, so a rejected form changes nothing.
* :class:`DashboardRoute` renders these outcomes as HTML: a 303 to the sign-in page, a 403 page,
  or an error page with the status :mod:`callhook.api.errors` gives a ``CallhookError``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.api.errors import status_for
from callhook.dashboard.render import page
from callhook.errors import CallhookError, InvalidRequest
from callhook.platform import Platform
from callhook.store import users as user_store
from callhook.store import web_sessions as session_store
from callhook.store.users import User

SESSION_COOKIE = "callhook_session"
SIGNIN_COOKIE = "callhook_signin"
COOKIE_PATH = "/dashboard"


class SignInRequired(Exception):
    """No live session: the route class answers with a redirect to the sign-in page."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class CsrfRejected(Exception):
    """A form without this session's CSRF token: answered with 403, nothing done."""


@dataclass(frozen=True, slots=True)
class Viewer:
    user: User
    csrf_token: str
    cookie: str

    @property
    def account_id(self) -> str:
        return self.user.account_id


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def is_https(request: Request) -> bool:
    """Whether the browser talks HTTPS to us (directly, or per the configured public URL)."""
    public = platform_of(request).settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int
) -> None:
    """HttpOnly, SameSite=Lax, scoped to /dashboard; Secure when the request is HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=is_https(request)
    )


def _load(platform: Platform, cookie: str) -> Viewer | None:
    with platform.db.read() as conn:
        session = session_store.lookup(conn, cookie, now=platform.clock.now())
        if session is None:
            return None
        user = user_store.get(conn, session.user_id)
    if user is None:
        return None
    return Viewer(user=user, csrf_token=session.csrf_token, cookie=cookie)


async def viewer(request: Request) -> Viewer:
    """The signed-in viewer; ``SignInRequired`` otherwise (also stored on ``request.state``)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    found = await run_in_threadpool(_load, platform_of(request), cookie) if cookie else None
    if found is None:
        raise SignInRequired(request.url.path)
    request.state.viewer = found
    return found


CurrentViewer = Annotated[Viewer, Depends(viewer)]


async def checked_form(request: Request, who: CurrentViewer) -> FormData:
    """The posted form, after checking its CSRF token against the viewer's session."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not session_store.csrf_matches(who.csrf_token, token):
        raise CsrfRejected()
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def text(form: FormData, name: str, *, limit: int = 4096) -> str:
    """A text field of a form, stripped ("" when absent or a file).

    Raises ``InvalidRequest`` (a 400 page) for a NUL character, which no form sends and
    PostgreSQL cannot hold even in a query.
    """
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if "\x00" in value:
        raise InvalidRequest(f"The form field '{name}' holds a NUL character.")
    return value.strip()[:limit]


def texts(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes)."""
    return [v for v in form.getlist(name) if isinstance(v, str)]


def safe_next(target: str | None) -> str:
    """A post-sign-in destination inside the dashboard (never another site)."""
    if target and target.startswith("/dashboard") and "//" not in target and "\\" not in target:
        return target
    return "/dashboard"


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, "error.html", {"title": title, "message": message}, status=status)


class DashboardRoute(APIRoute):
    """Answers the dashboard's control-flow exceptions with HTML instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired as exc:
                target = "/dashboard/signin"
                if exc.path != "/dashboard" and request.method == "GET":
                    target += "?next=" + quote(exc.path, safe="/")
                return RedirectResponse(target, status_code=303)
            except CsrfRejected:
                return error_page(
                    request,
                    403,
                    "Form expired",
                    "This form was not sent from your current session, so nothing was changed. "
                    "Go back, reload the page and try again.",
                )
            except CallhookError as exc:
                status = status_for(exc)
                title = "Not found" if status == 404 else "Request refused"
                return error_page(request, status, title, exc.message)

        return handler
