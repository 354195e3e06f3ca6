"""The customer dashboard: server-rendered pages under ``/dashboard``.

``install(app)`` adds the pages and their static files to an app built by
:func:`callhook.api.app.create_app`. Every core action is a plain HTML form (works without
JavaScript); ``static/dashboard.js`` only adds copy buttons and "select all / none".
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from callhook.dashboard import (
    pages_deliveries,
    pages_endpoint_health,
    pages_endpoint_tools,
    pages_endpoints,
    pages_tokens,
    pages_webhook,
    signin,
)
from callhook.dashboard.render import STATIC


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for module in (
        signin,
        pages_webhook,
        pages_endpoints,
        pages_endpoint_tools,
        pages_endpoint_health,
        pages_deliveries,
        pages_tokens,
    ):
        router.include_router(module.router, prefix="/dashboard")
    # Last, so no page's own route is shadowed (none ends in a slash).
    router.add_api_route("/dashboard/", without_slash, methods=["GET", "HEAD"])
    router.add_api_route("/dashboard/{rest:path}/", without_slash, methods=["GET", "HEAD"])
    return router


def without_slash(request: Request) -> RedirectResponse:
    """A dashboard page typed with a trailing slash: the same page without it (308, the query
    kept). The app redirects no slash itself — the API answers 404 in its envelope — but people
    type ``/dashboard/endpoints/`` into a browser. The target is a path on this site: it starts
    with ``/dashboard`` (never ``//``, so never another host)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    target = raw.decode("latin-1").rstrip("/")
    query = request.url.query
    return RedirectResponse(target + (f"?{query}" if query else ""), status_code=308)


def install(app: FastAPI) -> None:
    """Mount the dashboard's static files and include its pages."""
    app.mount("/dashboard/static", StaticFiles(directory=str(STATIC)), name="dashboard-static")
    app.include_router(build_router())


__all__ = ["build_router", "install"]
