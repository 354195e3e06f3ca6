"""aiohttp adapter. Imports aiohttp; the receiver core does not.

    async def process_event(event: Event) -> None: ...

    app.router.add_post("/webhook", webhook_handler(secret, process_event))

The handler answers 401 on a bad signature, 200 to a duplicate (when ``dedup`` is given), and
otherwise 200 at once while ``process_event(event)`` runs as a background task
(``background=False`` awaits it before answering). Inside your own handler use
``event = await verified_event(request, gate)`` instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from callhook.receiver.dedup import Deduplicator
from callhook.receiver.event import Event
from callhook.receiver.gate import ACCEPTED, Gate, Rejection
from callhook.receiver.verify import Secrets
from callhook.signing import DEFAULT_TOLERANCE

logger = logging.getLogger("callhook.receiver")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OnEvent = Callable[[Event], Awaitable[object]]

_tasks: set[asyncio.Future[object]] = set()


def _done(task: asyncio.Future[object]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("webhook background handler failed", exc_info=task.exception())


async def verified_event(request: web.Request, gate: Gate) -> Event:
    """The verified event of ``request``; raises ``web.HTTPException`` (401/400/200) if not."""
    try:
        gate.check_headers(request.headers)
        return gate.admit(request.headers, await request.read())
    except Rejection as rejection:
        raise _http_error(rejection) from rejection


def _http_error(rejection: Rejection) -> web.HTTPException:
    classes: dict[int, type[web.HTTPException]] = {
        200: web.HTTPOk,
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
    }
    cls = classes.get(rejection.status, web.HTTPBadRequest)
    return cls(text=json.dumps(rejection.body), content_type="application/json")


def webhook_handler(
    secret: Secrets,
    on_event: OnEvent,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    dedup: Deduplicator | None = None,
    background: bool = True,
    clock: Callable[[], float] | None = None,
) -> Handler:
    """An aiohttp handler that verifies, then runs ``on_event`` (in the background)."""
    gate = Gate(secret, tolerance=tolerance, dedup=dedup)
    if clock is not None:
        gate.clock = clock

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            gate.check_headers(request.headers)
            event = gate.admit(request.headers, await request.read())
        except Rejection as rejection:
            return web.json_response(rejection.body, status=rejection.status)
        if not background:
            try:
                await on_event(event)
            except BaseException:
                gate.release(event)
                raise
            return web.json_response(ACCEPTED)
        task: asyncio.Future[object] = asyncio.ensure_future(on_event(event))
        _tasks.add(task)
        task.add_done_callback(_done)
        return web.json_response(ACCEPTED)

    return handler
