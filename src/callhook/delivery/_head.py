"""What the endpoint answers, as libcurl hands it over: the response head, checked line by line,
and the first bytes of the body (private to the sender).

libcurl is lenient where the sender must not be: an answer whose head is not plain HTTP/1.x
(a status that is not three ASCII digits, an ``HTTP/2`` status line on an HTTP/1.1
connection, a header name that is not a token, NUL or a bare CR in a value, a header line over
8,190 bytes, more than 128 headers, a ``Content-Length`` that is not a small non-negative
number) is refused here, and the transfer is aborted, so the attempt is a ``connect_error``
(the same limits the aiohttp parser had, and the hostile-endpoint tests pin them). Any three
digits are a status, ``000`` and ``999`` included. Interim ``1xx`` heads are skipped.

The body is kept up to ``limit`` bytes; the transfer is stopped as the first byte past it
arrives (libcurl then reports a write error, which :attr:`Answer.enough` explains).
"""

from __future__ import annotations

import re
from typing import Final

MAX_LINE: Final = 8190
MAX_HEADERS: Final = 128

_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?:[ \t][^\r\n\x00]*)?\r?\n\Z")
# RFC 9110 token characters.
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_DIGITS: Final = re.compile(rb"[0-9]{1,18}\Z")


class Answer:
    """Collects one response: ``status``, ``retry_after`` (raw, decoded like aiohttp: UTF-8
    with surrogate escapes), ``body`` (at most ``limit`` bytes), ``complete`` once the final
    head has ended, ``problem`` when the head was refused, ``enough`` when the body was cut at
    ``limit`` on purpose."""

    __slots__ = (
        "body",
        "complete",
        "enough",
        "limit",
        "lines",
        "problem",
        "retry_after",
        "status",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status: int | None = None
        self.retry_after: str | None = None
        self.body = bytearray()
        self.complete = False
        self.enough = False
        self.problem: str | None = None
        self.lines = 0

    def on_header(self, line: bytes) -> int | None:
        """libcurl's HEADERFUNCTION: ``None`` to go on, ``-1`` to abort the transfer."""
        if self.complete:
            # Trailers of a chunked body: not part of the answer we judge.
            return None
        problem = self._take(line)
        if problem is None:
            return None
        self.problem = problem
        return -1

    def on_body(self, data: bytes) -> int | None:
        """libcurl's WRITEFUNCTION: keep up to ``limit`` bytes, then stop (``0`` aborts)."""
        room = self.limit - len(self.body)
        if len(data) <= room:
            self.body += data
            return None
        self.body += data[:room]
        self.enough = True
        return 0

    def _take(self, line: bytes) -> str | None:
        if self.status is None:
            match = _STATUS_LINE.match(line)
            if match is None:
                return f"not an HTTP/1.1 status line: {_show(line)}"
            self.status = int(match.group(1))
            self.lines = 0
            return None
        if line in (b"\r\n", b"\n"):
            if 100 <= self.status < 200:
                # An interim answer (100 Continue): the real one follows.
                self.status = None
                self.retry_after = None
            else:
                self.complete = True
            return None
        self.lines += 1
        if self.lines > MAX_HEADERS:
            return f"more than {MAX_HEADERS} headers"
        if len(line) > MAX_LINE + 2:
            return f"a header line longer than {MAX_LINE} bytes"
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.match(name) is None:
            return f"not a header line: {_show(line)}"
        value = value.rstrip(b"\r\n").strip(b" \t")
        if b"\x00" in value or b"\r" in value or b"\n" in value:
            return f"a control character in header {_show(name)}"
        lowered = name.lower()
        if lowered == b"retry-after":
            self.retry_after = value.decode("utf-8", "surrogateescape")
        elif lowered == b"content-length" and _DIGITS.match(value) is None:
            return f"an unusable Content-Length: {_show(value)}"
        return None


def _show(raw: bytes) -> str:
    return ascii(raw[:60].rstrip(b"\r\n"))[2:-1]
