"""The customer dashboard: server-rendered pages under ``/dashboard``.

``install(app)`` adds the pages and their static files to an app built by
:func:`callhook.api.app.create_app`. Every core action is a plain HTML form (works without
JavaScript); ``static/dashboard.js`` only adds copy buttons and "select all / none".
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from callhook.dashboard import (
    pages_deliveries,
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
        pages_deliveries,
        pages_tokens,
    ):
        router.include_router(module.router, prefix="/dashboard")
    return router


def install(app: FastAPI) -> None:
    """Mount the dashboard's static files and include its pages."""
    app.mount("/dashboard/static", StaticFiles(directory=str(STATIC)), name="dashboard-static")
    app.include_router(build_router())


__all__ = ["build_router", "install"]
