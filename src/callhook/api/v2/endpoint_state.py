"""Pausing and resuming an endpoint: ``POST /api/v2/endpoints/{endpoint_id}/pause|resume``.

Scope ``endpoints.write``. The state machine is ``callhook.core.health`` (its rows:
``callhook.store.endpoint_health``): while ``paused`` new events are accepted and wait
``pending``, in order, and nothing is attempted; resuming makes the endpoint ``active`` at once
and its waiting events go out in order. Both are idempotent. Another account's endpoint id is
answered like an unknown one (404); pausing a ``disabled`` endpoint is a 409 (resume it first:
a pause would hide why it is disabled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from callhook.api.envelope import success
from callhook.api.v2.common import EndpointWriter, platform_of, responses, write
from callhook.api.v2.endpoints import NOT_FOUND, EndpointIdPath, rules_of, shown
from callhook.api.v2.models import EndpointResponse
from callhook.store import endpoint_health
from callhook.store import endpoints as endpoint_store
from callhook.store.db import Connection

router = APIRouter(tags=["endpoints"])

#: Who a change through the API is recorded as (the endpoint event log's ``by``).
BY = "customer"


@router.post(
    "/api/v2/endpoints/{endpoint_id}/pause",
    summary="Pause an endpoint",
    description="Stop delivering to the endpoint, e.g. for maintenance: new events are "
    "accepted and wait, in order; nothing is attempted (test events still go out). Resume to "
    "deliver them. Pausing a paused endpoint changes nothing; a disabled one is refused "
    "(409: resume it first).",
    response_model=EndpointResponse,
    responses=responses(
        400,
        401,
        403,
        404,
        409,
        413,
        422,
        429,
        431,
        descriptions={**NOT_FOUND, 409: "The endpoint is disabled: resume it first."},
    ),
)
async def pause_endpoint(
    request: Request, endpoint_id: EndpointIdPath, caller: EndpointWriter
) -> Response:
    return await _change(request, endpoint_id, caller, endpoint_health.pause)


@router.post(
    "/api/v2/endpoints/{endpoint_id}/resume",
    summary="Resume an endpoint",
    description="Deliver to the endpoint again at once, whatever held it: a pause (the events "
    "that waited go out in order), failing (the deliveries that failed during the outage are "
    "queued again when `replay_on_recovery` is on) or disabled (it is enabled again). "
    "Resuming an active endpoint changes nothing.",
    response_model=EndpointResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431, descriptions=NOT_FOUND),
)
async def resume_endpoint(
    request: Request, endpoint_id: EndpointIdPath, caller: EndpointWriter
) -> Response:
    return await _change(request, endpoint_id, caller, endpoint_health.resume)


async def _change(
    request: Request, endpoint_id: str, caller: Any, change: Callable[..., Any]
) -> Response:
    """Apply ``change`` (``endpoint_health.pause`` or ``resume``) to the caller's endpoint in
    one transaction (404 unless it is the account's) and answer with the endpoint as it is now."""
    platform = platform_of(request)

    def work(conn: Connection) -> dict[str, Any]:
        endpoint = endpoint_store.get(conn, caller.account_id, endpoint_id)
        change(
            conn,
            endpoint.id,
            endpoint.account_id,
            by=BY,
            now=platform.clock.now(),
            rules=rules_of(platform),
        )
        return shown(conn, platform, [endpoint_store.get(conn, caller.account_id, endpoint_id)])[0]

    return success(request, await write(request, work))
