"""``/healthz`` (the process is up), ``/readyz`` (it can reach the database), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from callhook.platform import Platform

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


def _ping(platform: Platform) -> None:
    with platform.db.read() as conn:
        conn.execute(text("SELECT 1"))


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    try:
        await run_in_threadpool(_ping, platform)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    payload = await run_in_threadpool(generate_latest, platform.metrics.registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
