"""Cross-process wake-ups on SQLite: Unix datagram sockets in ``<database file>.wake/``.

SQLite has no ``NOTIFY``, so the processes sharing a database file signal each other beside it.
Each listening worker binds its own datagram socket in the wake directory
(``<pid>-<random>.sock``, the directory created with mode 0o700 so only the listening user
reaches it); after every commit that queued deliveries, every publishing process sends one byte
to every socket there (``Pinger.ping``, registered by ``Platform.create``), and a listener that
receives anything calls its ``wake`` once.

Like the PostgreSQL ``Listener`` it is an accelerator, never the source of truth: the worker
still polls every ``poll_interval`` seconds, so a lost datagram delays a delivery by at most one
poll, and ``Pinger.ping`` never raises. A listener wakes its worker once when it starts (and
again whenever it had to re-bind), because what was committed while nobody listened sent it
nothing. A socket left by a killed process is unlinked by the first pinger that finds nobody
bound to it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import selectors
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from callhook.store.db import Database
from callhook.store.files import make_private_dir, make_private_dirs

log = logging.getLogger("callhook.store.wake")

SUFFIX = ".sock"
#: Seconds between checks that our socket is still the one in the directory (someone may have
#: removed the directory); also bounds how long ``stop`` waits if its signal were lost.
CHECK_INTERVAL = 1.0
#: A directory listing is reused only while the directory's mtime is older than this (ns):
#: a change within the filesystem's timestamp granularity of our listing may leave the mtime
#: unchanged ("racy mtime"), so a fresh mtime proves nothing. 2 s covers coarse filesystems.
RACY_MTIME_NS = 2_000_000_000
#: A conservative bound on ``sun_path`` (Linux allows 107 bytes, macOS 103).
MAX_SOCKET_PATH = 100
#: The most datagrams read before waking; the rest are read on the next round.
MAX_DRAIN = 1024
#: An upper bound on the length of our socket names (``<pid>-<12 hex>.sock``).
MAX_NAME = 32


def wake_dir(db: Database) -> Path | None:
    """The wake directory of a file-backed SQLite database; None for PostgreSQL, in-memory
    SQLite (no other process can share it) and Windows (no Unix datagram sockets)."""
    if not db.is_sqlite or sys.platform == "win32":  # no Unix datagram sockets there
        return None
    url = make_url(db.url)
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    return Path(os.path.abspath(database) + ".wake")


class _Addresses:
    """Socket addresses inside ``directory``, however long its path.

    ``sun_path`` holds about 100 bytes; a deeper directory is reached on Linux through
    ``/proc/self/fd/<fd of the directory>/``, which ``bind`` and ``sendto`` resolve like any
    path. Use as a context manager: the directory's descriptor (if any) is closed on exit.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._fd: int | None = None

    def __enter__(self) -> _Addresses:
        if len(os.fsencode(self._directory)) + 1 + MAX_NAME > MAX_SOCKET_PATH:
            if not sys.platform.startswith("linux"):
                raise OSError(f"wake directory path too long for a Unix socket: {self._directory}")
            self._fd = os.open(self._directory, os.O_PATH | os.O_DIRECTORY)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def of(self, name: str) -> str:
        if self._fd is None:
            return str(self._directory / name)
        return f"/proc/self/fd/{self._fd}/{name}"


class DatagramListener:
    """Calls ``wake()`` from a background thread whenever a datagram reaches its socket.

    ``start`` binds the socket before it returns (so a publish committed after ``start``
    reaches it) and raises ``OSError`` if it cannot; the thread then calls ``wake`` once, and
    once per burst of datagrams (it drains whatever is queued before waking). If the socket
    disappears from the directory (someone removed it), the listener binds a new one within
    ``CHECK_INTERVAL`` and wakes once. ``stop`` returns as soon as the thread has closed and
    unlinked its socket.
    """

    def __init__(
        self, directory: Path, wake: Callable[[], None], *, name: str = "wake-listener"
    ) -> None:
        self.directory = directory
        self._wake = wake
        self._stop = threading.Event()
        self._stop_pipe: tuple[int, int] | None = None  # (read, write): interrupts the select
        self._sock: socket.socket | None = None
        self._ino = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"callhook-{name}", daemon=True)
        self.path: Path | None = None
        #: Datagrams received and wakes made (for tests and debugging).
        self.datagrams = 0
        self.wakes = 0
        self.binds = 0

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread.is_alive()

    def bind(self) -> DatagramListener:
        """Create the directory if needed and bind a fresh socket in it (idempotent)."""
        if self._sock is None:
            self._bind()
        return self

    def start(self) -> DatagramListener:
        try:
            self.bind()
            self._stop_pipe = os.pipe()
            os.set_blocking(self._stop_pipe[1], False)
        except OSError:
            self._close()
            raise
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening, close the socket and unlink it (also when never started)."""
        self._stop.set()
        with self._close_lock:
            # Under the lock: once closed, the descriptor number may belong to another file.
            if not self._closed and self._stop_pipe is not None:
                # A full pipe (BlockingIOError) means the thread has been told already.
                with contextlib.suppress(BlockingIOError):
                    os.write(self._stop_pipe[1], b"x")
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self._close()

    def _bind(self) -> None:
        make_private_dirs(self.directory)
        make_private_dir(self.directory)  # one made by an older version, or under a lax umask
        name = f"{os.getpid()}-{secrets.token_hex(6)}{SUFFIX}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with _Addresses(self.directory) as addresses:
                sock.bind(addresses.of(name))
            sock.setblocking(False)
            path = self.directory / name
            self._ino = os.lstat(path).st_ino
        except OSError:
            sock.close()
            raise
        self._sock, self.path = sock, path
        self.binds += 1

    def _unbind(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.path is not None:
            try:
                # Only our own socket: a re-created directory may hold another one by now.
                if os.lstat(self.path).st_ino == self._ino:
                    self.path.unlink()
            except OSError:
                pass
            self.path = None

    def _close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._unbind()
            if self._stop_pipe is not None:
                os.close(self._stop_pipe[0])
                os.close(self._stop_pipe[1])

    def _call_wake(self) -> None:
        self.wakes += 1
        self._wake()

    def _still_bound(self) -> bool:
        try:
            return self.path is not None and os.lstat(self.path).st_ino == self._ino
        except OSError:
            return False

    def _drain(self) -> int:
        received = 0
        # Bounded, so a flood of pings cannot keep us from waking (or from stopping).
        while self._sock is not None and received < MAX_DRAIN:
            try:
                self._sock.recv(64)
            except BlockingIOError:
                break
            received += 1
        return received

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            self._call_wake()  # whatever was committed before we bound
            assert self._stop_pipe is not None
            selector.register(self._stop_pipe[0], selectors.EVENT_READ)
            if self._sock is not None:
                selector.register(self._sock, selectors.EVENT_READ)
            next_check = time.monotonic() + CHECK_INTERVAL
            while not self._stop.is_set():
                selector.select(max(0.0, next_check - time.monotonic()))
                if self._stop.is_set():
                    break
                received = self._drain()
                if received:
                    self.datagrams += received
                    self._call_wake()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_INTERVAL
                    if not self._still_bound():
                        self._rebind(selector)
        except Exception:
            log.exception("wake listener failed; the worker falls back to polling")
        finally:
            selector.close()
            self._close()

    def _rebind(self, selector: selectors.BaseSelector) -> None:
        if self._sock is not None:
            selector.unregister(self._sock)
        self._unbind()
        try:
            self._bind()
        except OSError as exc:
            log.warning(
                "wake socket gone and cannot bind a new one; retrying",
                extra={"error": str(exc)[:200], "retry_in_s": CHECK_INTERVAL},
            )
            return
        assert self._sock is not None
        selector.register(self._sock, selectors.EVENT_READ)
        self._call_wake()  # publishes while we were unreachable signalled nobody


class Pinger:
    """Sends one byte, without blocking, to every listener's socket in ``directory``.

    ``ping`` never raises: a full socket buffer means that listener already has a wake pending;
    a socket nobody is bound to (``ECONNREFUSED``) or that vanished (``ENOENT``) was left by a
    killed process and is unlinked; any other ``OSError`` is logged at debug. The directory is
    listed again only when its inode or mtime changed (or the mtime is too recent to trust), so
    a publish with nobody listening costs one ``stat``. Safe from any thread.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._listed: tuple[int, int] | None = None  # (st_ino, st_mtime_ns) of the listing
        self._names: tuple[str, ...] = ()
        #: Datagrams sent and stale sockets removed (for tests and debugging).
        self.sent = 0
        self.removed = 0

    def ping(self) -> None:
        try:
            with self._lock:
                self._ping()
        except OSError as exc:
            log.debug("wake ping failed", extra={"error": str(exc)[:200]})
        except Exception:
            # A bug here must not fail the publish that has already committed.
            log.warning("wake ping failed unexpectedly", exc_info=True)

    def _targets(self) -> tuple[str, ...]:
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            self._listed, self._names = None, ()
            return ()
        key = (st.st_ino, st.st_mtime_ns)
        if key != self._listed:
            self._names = tuple(n for n in os.listdir(self.directory) if n.endswith(SUFFIX))
            # Filesystem timestamps are wall-clock time, hence time.time_ns() and no Clock.
            fresh = time.time_ns() - st.st_mtime_ns < RACY_MTIME_NS
            self._listed = None if fresh else key
        return self._names

    def _ping(self) -> None:
        names = self._targets()
        if not names:
            return
        with (
            _Addresses(self.directory) as addresses,
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        ):
            sock.setblocking(False)
            for name in names:
                try:
                    sock.sendto(b"\0", addresses.of(name))
                    self.sent += 1
                except BlockingIOError:
                    pass  # its queue is full: that listener has a wake pending already
                except (ConnectionRefusedError, FileNotFoundError):
                    self._remove_stale(name)
                except OSError as exc:
                    log.debug("wake ping failed", extra={"socket": name, "error": str(exc)[:200]})

    def _remove_stale(self, name: str) -> None:
        path = self.directory / name
        try:
            # Names are never reused, so nobody can bind this one between the check and unlink;
            # the check only keeps us from deleting a stray non-socket file named *.sock.
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                path.unlink()
                self.removed += 1
        except FileNotFoundError:
            pass
        self._names = tuple(n for n in self._names if n != name)
        self._listed = None


def pinger_for(db: Database) -> Pinger | None:
    """A pinger for the wake directory of a file-backed SQLite database, else None."""
    directory = wake_dir(db)
    return None if directory is None else Pinger(directory)


__all__ = ["DatagramListener", "Pinger", "pinger_for", "wake_dir"]
