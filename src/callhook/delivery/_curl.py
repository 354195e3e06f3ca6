"""libcurl's multi interface driven by the asyncio event loop (private to the sender).

One ``pycurl.CurlMulti`` per sender: it owns the connection cache (keep-alive connections and
TLS sessions are reused across transfers) and runs every transfer on the loop's thread. libcurl
tells us which sockets to watch (``M_SOCKETFUNCTION``) and when to wake it
(``M_TIMERFUNCTION``); we hand readiness back with ``socket_action`` and collect finished
transfers with ``info_read``. No threads, no polling: an idle sender costs nothing.

Why libcurl: it is the fastest well-kept client measured on this machine that meets every
request rule (``bench/http_clients.py``, docs/decisions.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pycurl


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection limits of one multi handle.

    ``total`` caps open connections (in use or idle) and the idle cache; ``per_host`` caps
    connections to one host name and port. Transfers over a cap wait inside libcurl (inside
    their time limit), so callers keep their own in-flight counts at or below these.
    """

    total: int
    per_host: int


class CurlLoop:
    """Runs ``pycurl.Curl`` transfers on the running event loop; one per sender.

    :meth:`perform` adds a prepared easy handle and waits for it; :meth:`close` ends every
    transfer and closes every connection. Not thread-safe: use it from its loop only.
    """

    def __init__(self, limits: Limits) -> None:
        self._loop = asyncio.get_running_loop()
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._multi.setopt(pycurl.M_MAXCONNECTS, max(limits.total, 1))
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, max(limits.total, 1))
        self._multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, max(limits.per_host, 1))
        self._waiting: dict[pycurl.Curl, asyncio.Future[tuple[int, str]]] = {}
        # fd -> (reading, writing) as registered with the loop.
        self._watched: dict[int, tuple[bool, bool]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def perform(self, handle: pycurl.Curl) -> tuple[int, str]:
        """Run ``handle``'s transfer to its end: ``(0, "")``, or libcurl's error code and
        message. Cancelling the caller removes the transfer (its connection is closed)."""
        if self._closed:
            raise RuntimeError("the transfer loop is closed")
        done: asyncio.Future[tuple[int, str]] = self._loop.create_future()
        self._waiting[handle] = done
        self._multi.add_handle(handle)  # arms a 0 ms timer; the transfer starts there
        try:
            return await done
        finally:
            if self._waiting.pop(handle, None) is not None:
                # Cancelled (or closed) mid-transfer.
                self._multi.remove_handle(handle)

    def close(self) -> None:
        """Stop watching sockets, fail waiting transfers, close the multi handle."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fd in list(self._watched):
            self._unwatch(fd)
        for handle, done in list(self._waiting.items()):
            self._multi.remove_handle(handle)
            if not done.done():
                done.set_result((pycurl.E_ABORTED_BY_CALLBACK, "the sender was closed"))
        self._waiting.clear()
        self._multi.close()

    # --- libcurl's callbacks (called from inside socket_action / add_handle) -----------------
    def _on_socket(self, what: int, fd: int, _multi: object, _socketp: object) -> None:
        if what == pycurl.POLL_REMOVE:
            self._unwatch(fd)
            return
        reading = what in (pycurl.POLL_IN, pycurl.POLL_INOUT)
        writing = what in (pycurl.POLL_OUT, pycurl.POLL_INOUT)
        was_reading, was_writing = self._watched.get(fd, (False, False))
        if reading != was_reading:
            if reading:
                self._loop.add_reader(fd, self._action, fd, pycurl.CSELECT_IN)
            else:
                self._loop.remove_reader(fd)
        if writing != was_writing:
            if writing:
                self._loop.add_writer(fd, self._action, fd, pycurl.CSELECT_OUT)
            else:
                self._loop.remove_writer(fd)
        self._watched[fd] = (reading, writing)

    def _on_timer(self, timeout_ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if timeout_ms >= 0 and not self._closed:
            # Never call socket_action from inside a libcurl callback: schedule it.
            self._timer = self._loop.call_later(timeout_ms / 1000, self._on_timeout)

    # --- driving -----------------------------------------------------------------------------
    def _unwatch(self, fd: int) -> None:
        reading, writing = self._watched.pop(fd, (False, False))
        if reading:
            self._loop.remove_reader(fd)
        if writing:
            self._loop.remove_writer(fd)

    def _on_timeout(self) -> None:
        self._timer = None
        self._action(pycurl.SOCKET_TIMEOUT, 0)

    def _action(self, fd: int, events: int) -> None:
        if self._closed:
            return
        while True:
            status, _running = self._multi.socket_action(fd, events)
            if status != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, ok, failed = self._multi.info_read()
            for handle in ok:
                self._finish(handle, 0, "")
            for handle, errno, message in failed:
                self._finish(handle, errno, message)
            if not queued:
                break

    def _finish(self, handle: pycurl.Curl, errno: int, message: str) -> None:
        self._multi.remove_handle(handle)
        done = self._waiting.pop(handle, None)
        if done is not None and not done.done():
            done.set_result((errno, message))
