"""The front door of a Callhook server: ``/``, ``/favicon.ico`` and the API reference.

* ``/`` sends people to the dashboard (a JSON 404 there looked broken).
* ``/favicon.ico`` is the dashboard's icon, so browser tabs and bookmarks show it everywhere.
* ``/api/v2/docs`` is Swagger UI with every asset served from this installation — the
  ``fastapi-offline`` package ships Swagger UI's files — so the reference also works on a
  machine without internet access (FastAPI's default page loads them from a CDN).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from callhook.dashboard.render import STATIC

#: Swagger UI's JavaScript and CSS as the ``fastapi-offline`` package installs them.
SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_URL = "/api/v2/docs"
DOCS_ASSETS_URL = "/api/v2/docs/assets"
FAVICON = STATIC / "favicon.ico"

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def home() -> Response:
    """People who open the server's address want the dashboard (which asks them to sign in)."""
    return RedirectResponse("/dashboard", status_code=307)


@router.api_route("/favicon.ico", methods=["GET", "HEAD"])
async def favicon() -> Response:
    return FileResponse(
        FAVICON,
        media_type="image/vnd.microsoft.icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def install(app: FastAPI) -> None:
    """Add ``/``, ``/favicon.ico`` and the offline API reference to ``app`` (built with
    ``docs_url=None``, so FastAPI's CDN-loading page is not there)."""
    app.include_router(router)
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=SWAGGER_ASSETS), name="api-docs-assets")
    openapi_url = app.openapi_url or "/api/v2/openapi.json"
    title = f"{app.title} reference"

    @app.get(DOCS_URL, include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=title,
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}/favicon.ico",
            # No call to Swagger's public validator service either.
            swagger_ui_parameters={"validatorUrl": None},
        )
