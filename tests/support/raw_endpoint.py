"""A raw-socket HTTPS endpoint: reads one request per connection and answers with exactly the
bytes (and pauses) a test scripts — including what no HTTP library would write.

    endpoint = await RawEndpoint(tls.server_context()).start()
    endpoint.script("/a", [b"HTTP/1.1 503 x\r\nRetry-After: \xe2\x91\xa0\r\n", b"\r\n"])
    ... deliver to endpoint.url("/a") ...
    await endpoint.stop()

A script is a sequence of steps: ``bytes`` are written (and drained), a ``float`` sleeps that
many seconds, ``DRIP`` writes one byte every 50 ms until the client goes away. After the last
step the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

DRIP: Final = "drip"
Step = bytes | float | str


@dataclass(frozen=True)
class RawRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawEndpoint:
    ssl_context: ssl.SSLContext | None
    received: list[RawRequest] = field(default_factory=list)
    #: Connections that ended because the client closed them (a dripping body cut off).
    client_closed: int = 0
    port: int = 0
    _scripts: dict[str, Sequence[Step]] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def url(self, path: str) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://localhost:{self.port}{path}"

    def script(self, path: str, steps: Sequence[Step]) -> str:
        """Answer requests for ``path`` with ``steps``; returns the URL."""
        self._scripts[path] = steps
        return self.url(path)

    async def start(self) -> RawEndpoint:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Abort open connections, so scripts still writing end with a ConnectionError (a
        # cancelled handler task is logged as an error by asyncio).
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.received.append(request)
            steps = self._scripts.get(request.path, [b"HTTP/1.1 404 Not Found\r\n\r\n"])
            for step in steps:
                if isinstance(step, bytes):
                    writer.write(step)
                    await writer.drain()
                elif step == DRIP:
                    for _ in range(1200):  # a minute at most, should the client never leave
                        if reader.at_eof():
                            raise ConnectionResetError("the client closed the connection")
                        writer.write(b"x")
                        await writer.drain()
                        await asyncio.sleep(0.05)
                else:
                    assert isinstance(step, float)
                    await asyncio.sleep(step)
        except (ConnectionError, ssl.SSLError):
            self.client_closed += 1
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return RawRequest(path, headers, body)
