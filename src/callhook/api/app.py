"""``create_app(settings)``: the HTTP API (and, with ``run_worker``, the delivery worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from callhook import __version__
from callhook.api import errors as error_mapping
from callhook.api import health, ingest
from callhook.api.middleware import RequestIdMiddleware
from callhook.core.clock import Clock
from callhook.core.ids import Randomness
from callhook.delivery.worker import Worker
from callhook.platform import Platform
from callhook.settings import Settings

log = logging.getLogger("callhook.api")


def create_app(
    settings: Settings,
    *,
    platform: Platform | None = None,
    clock: Clock | None = None,
    rng: Randomness | None = None,
    run_worker: bool = False,
    on_worker_failure: Callable[[BaseException], None] | None = None,
    fast_ingest: bool = True,
) -> FastAPI:
    """Build the ASGI app. With ``run_worker`` the app also runs a delivery worker, woken on
    every publish, started and drained by the app's lifespan (SIGTERM drains in-flight attempts).

    A worker that stops by itself (``WorkerFailed``: one of its tasks died; it has drained and
    logged why) is kept as ``app.state.worker_failure`` and passed to ``on_worker_failure``:
    ``callhook serve`` and ``callhook demo`` then shut the server down and exit non-zero, rather
    than accept events that nothing in the process delivers. ``fast_ingest=False`` leaves
    publishing to the FastAPI route alone (``IngestFastPath`` answers the same; tests compare
    the two).
    """
    platform = platform or Platform.create(settings, clock=clock, rng=rng)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        app.state.ingest_writer = ingest.ingest_writer(platform)  # closed at shutdown
        if run_worker:
            worker = Worker.for_platform(platform)
            platform.publisher.on_publish(worker.wake)
            app.state.worker = worker
            task = asyncio.create_task(worker.run(stop), name="delivery worker")
            task.add_done_callback(worker_ended)
        try:
            yield
        finally:
            # uvicorn has finished the requests in flight: what they queued is written.
            await asyncio.to_thread(ingest.writer_of(app).close, 30.0)
            stop.set()
            if task is not None:
                await asyncio.wait([task])  # a failure was reported by ``worker_ended``

    def worker_ended(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        failure = task.exception()
        assert failure is not None
        app.state.worker_failure = failure
        log.error("the delivery worker stopped by itself", extra={"error": str(failure)})
        if on_worker_failure is not None:
            on_worker_failure(failure)

    app = FastAPI(
        title="Callhook API",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v2/openapi.json",
        docs_url=None,  # callhook.api.site serves /api/v2/docs without a CDN
        redoc_url=None,
        # A path with a trailing slash is not found, in the envelope: Starlette's default
        # answered a 307 with no body and an absolute ``http://`` Location, and an empty
        # path parameter (``/events/``) led on to another route's 405. The dashboard sends
        # its own pages typed with a slash on to the page (``dashboard.without_slash``).
        redirect_slashes=False,
    )
    app.state.platform = platform
    app.state.settings = settings
    app.state.ingest_writer = ingest.ingest_writer(platform)
    error_mapping.install(app)
    app.include_router(health.router)
    app.include_router(ingest.router)
    _include_optional_routers(app)
    # Added first, so inside RequestIdMiddleware (the last added is the outermost).
    if fast_ingest:
        app.add_middleware(ingest.IngestFastPath)
    app.add_middleware(RequestIdMiddleware)
    return app


def _include_optional_routers(app: FastAPI) -> None:
    """Routers of the other parts (management API, dashboard), each in its own module."""
    from callhook.api import v2
    from callhook.api.ratelimit import RateLimits

    # Per-process limits of API v2 (see callhook.api.ratelimit), on the platform's clock.
    app.state.rate_limits = RateLimits.from_settings(app.state.settings, app.state.platform.clock)
    app.include_router(v2.router)

    from callhook import dashboard
    from callhook.api import site

    dashboard.install(app)
    site.install(app)
