"""A live API: ``create_app`` served by uvicorn on a loopback port, for tests that go over a
real socket (ingest, API v2) on whichever backend the platform uses."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from callhook.api.app import create_app
from callhook.platform import Platform
from tests.support.receiver import free_port


@contextlib.contextmanager
def serving(platform: Platform) -> Iterator[str]:
    """Serve ``platform`` (no worker) until the block ends; yields the base URL."""
    port = free_port()
    app = create_app(platform.settings, platform=platform)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # a safety net for a server that never starts
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
