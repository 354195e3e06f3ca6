"""Real servers for the browser tests: uvicorn (API + dashboard + worker) and an HTTPS receiver,
each on its own thread and event loop, so the synchronous Playwright API can drive the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from aiohttp import web

from callhook.api.app import create_app
from callhook.platform import Platform
from callhook.settings import Settings
from callhook.store.migrate import upgrade
from tests.support.receiver import Receiver, Tls, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_chromium() -> str:
    """Debian's Chromium, installed with ``make browser`` when missing. Raises if impossible:
    the browser tests must fail, never skip, on a machine without a browser."""
    if not os.access(CHROMIUM, os.X_OK):
        root = Path(__file__).resolve().parents[3]
        make = shutil.which("make")
        if make is not None:
            subprocess.run([make, "-s", "browser"], cwd=root, check=False)
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing and `make browser` could not install it")
    return CHROMIUM


def eventually(predicate: Callable[[], bool], *, timeout: float = 15.0) -> None:
    """Poll until ``predicate()``; a safety net against hanging, not a performance threshold."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@dataclass
class ReceiverThread:
    """The HTTPS test receiver on its own loop; ``status`` is what it answers next."""

    tls: Tls
    status: int = 200
    receiver: Receiver | None = None
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None

    async def _behaviour(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response({"received": self.status < 300}, status=self.status)

    def start(self) -> ReceiverThread:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        receiver = Receiver(self.tls.server_context(), behaviour=self._behaviour)
        asyncio.run_coroutine_threadsafe(receiver.start(), self._loop).result(timeout=30)
        self.receiver = receiver
        return self

    @property
    def url(self) -> str:
        assert self.receiver is not None
        return self.receiver.url

    def stop(self) -> None:
        if self.receiver is not None:
            asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)


@dataclass
class ServerThread:
    """``create_app(..., run_worker=True)`` served by uvicorn on a free loopback port."""

    platform: Platform
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def serving(tmp: Path, ca_bundle: Path) -> Iterator[ServerThread]:
    settings = Settings.from_env(
        {
            "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp / 'callhook.db'}",
            "CALLHOOK_CA_BUNDLE": str(ca_bundle),
            # The receiver listens on loopback, which production refuses.
            "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
            "CALLHOOK_POLL_INTERVAL": "0.05",
            "CALLHOOK_LOG_LEVEL": "WARNING",
        }
    )
    platform = Platform.create(settings)
    upgrade(platform.db)
    port = free_port()
    app = create_app(settings, platform=platform, run_worker=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, timeout=30)
    try:
        yield ServerThread(platform=platform, port=port, server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        platform.db.dispose()
