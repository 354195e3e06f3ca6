"""Raw HTTP/1.1 over sockets, for probing servers' limits: send without reading, read one
answer, tell whether the server closed the connection."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass

import orjson

#: Seconds before a socket operation counts as hung (a guard, not a measurement).
GUARD = 30.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def envelope(self) -> dict[str, object]:
        doc: dict[str, object] = orjson.loads(self.body)
        assert list(doc) == ["status", "errors", "request_id", "timestamp", "path"]
        assert doc["status"] == self.status
        assert self.headers["content-type"] == "application/json"
        assert self.headers["x-request-id"] == doc["request_id"]
        return doc


def read_answer(sock: socket.socket, *, then_closed: bool = True) -> Answer:
    """One response, then (``then_closed``) whether the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed without an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    body, extra = rest[:length], rest[length:]
    closed = closed_by_peer(sock) if then_closed and not extra else False
    return Answer(status, headers, body, closed)


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def send_until_answered(sock: socket.socket, head: bytes, filler: bytes, total: int) -> int:
    """Send ``head`` then ``filler`` repeatedly up to ``total`` bytes, stopping as soon as the
    server answers (or stops reading); return how many filler bytes went out."""
    sock.sendall(head)
    sock.setblocking(False)
    sent = 0
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], GUARD)
            if readable:
                break
            if not writable:
                raise AssertionError("server neither read nor answered")
            try:
                sent += sock.send(filler[: total - sent])
            except (BlockingIOError, InterruptedError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    finally:
        sock.setblocking(True)
        sock.settimeout(GUARD)
    return sent
