"""``/healthz`` (the process is up), ``/readyz`` (the database can take work), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from callhook.platform import Platform

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 ``{"status": "ok", "database": "ok"}``; 503 ``{"status": "unavailable", "database":
    "unreachable" | "disk_full"}`` while the database cannot take work (``Database.readiness``),
    so a load balancer sends traffic elsewhere until it recovers by itself."""
    platform: Platform = request.app.state.platform
    cause = await run_in_threadpool(platform.db.readiness)
    if cause is not None:
        return JSONResponse(
            {"status": "unavailable", "database": cause.value},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    payload = await run_in_threadpool(generate_latest, platform.metrics.registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
