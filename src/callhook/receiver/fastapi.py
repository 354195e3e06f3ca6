"""FastAPI / Starlette adapter. Imports Starlette; the receiver core does not.

    install(app)        # a rejection answers its own JSON (401/400) instead of {"detail": "…"}
    verifier = WebhookVerifier(secret, dedup=Deduplicator())

    @app.post("/webhook")
    async def hook(event: Event = Depends(verifier)) -> Response:
        return accept(process_event, event)   # 200 now, process_event(event) after the response

In plain Starlette: ``event = await verifier.event(request)`` inside the endpoint.
A bad signature answers 401 (a duplicate 200) before the endpoint runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ParamSpec

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from callhook.receiver.dedup import Deduplicator
from callhook.receiver.event import Event
from callhook.receiver.gate import ACCEPTED, Gate, Rejection
from callhook.receiver.verify import Secrets
from callhook.signing import DEFAULT_TOLERANCE

P = ParamSpec("P")


class WebhookRejected(HTTPException):
    """Raised by the dependency; its status and JSON detail become the response."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(status_code=rejection.status, detail=str(rejection.body))
        self.rejection = rejection


async def rejected_handler(request: Request, exc: Exception) -> Response:
    """Exception handler that answers a :class:`WebhookRejected` with its JSON body."""
    assert isinstance(exc, WebhookRejected)
    return JSONResponse(exc.rejection.body, status_code=exc.rejection.status)


class WebhookVerifier:
    """A FastAPI dependency (``Depends(verifier)``) returning the verified :class:`Event`."""

    def __init__(
        self,
        secret: Secrets,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        dedup: Deduplicator | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.gate = Gate(secret, tolerance=tolerance, dedup=dedup)
        if clock is not None:
            self.gate.clock = clock

    async def event(self, request: Request) -> Event:
        """Verify ``request``; raise :class:`WebhookRejected` (an ``HTTPException``) if bad."""
        headers: Mapping[str, str] = request.headers
        try:
            self.gate.check_headers(headers)
            return self.gate.admit(headers, await request.body())
        except Rejection as rejection:
            raise WebhookRejected(rejection) from rejection

    async def __call__(self, request: Request) -> Event:
        return await self.event(request)


def accept(fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> Response:
    """A 200 ``{"received": true}`` response that runs ``fn(*args, **kwargs)`` after it is
    sent (sync functions run in Starlette's thread pool)."""
    return JSONResponse(ACCEPTED, status_code=200, background=BackgroundTask(fn, *args, **kwargs))


def install(app: Starlette) -> None:
    """Optional: answer rejections with their JSON body (``{"error", "detail"}``) instead of
    Starlette's default ``{"detail": …}``. Call once per app (FastAPI apps are Starlette apps)."""
    app.add_exception_handler(WebhookRejected, rejected_handler)
