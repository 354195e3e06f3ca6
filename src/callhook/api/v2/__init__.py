"""API v2: the management API customers script against (spec 002 and beyond).

``router`` holds every ``/api/v2/webhooks…`` route. Fixed paths are registered before the
``/api/v2/webhooks/{event}`` routes so that ``/webhooks/deliveries``, ``/webhooks/test`` and
``/webhooks/available`` are never taken for event names. ``/api/v2/endpoints…`` (several
endpoints per account) is beside them.
"""

from __future__ import annotations

from fastapi import APIRouter

from callhook.api.v2 import deliveries, endpoints, subscriptions

router = APIRouter()
router.include_router(deliveries.router)
router.include_router(subscriptions.router)
router.include_router(endpoints.router)

__all__ = ["router"]
