"""Real outages for tests: a small filesystem that can be filled, a TCP path that can be cut.

``small_filesystem`` mounts a size-limited tmpfs (the tests run as root); where tmpfs cannot be
mounted it makes an ext4 image of that size and loop-mounts it. If neither works it raises:
a test of a full disk must fail, never skip, on a machine that cannot give it one.

``TcpProxy`` forwards a local port to a server (PostgreSQL); ``cut()`` closes the listener and
every connection through it (the server is then unreachable: connection refused), ``restore()``
listens again on the same port.

``table_away`` renames a table for a block, so every statement that reads it fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from callhook.platform import Platform


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def small_filesystem(where: Path, size_mib: int) -> Iterator[Path]:
    """A filesystem of ``size_mib`` MiB mounted at ``where``/mnt, unmounted on exit."""
    mount_point = where / "mnt"
    mount_point.mkdir(parents=True)
    tried = []
    result = _run(
        "mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(mount_point)
    )
    if result.returncode != 0:
        tried.append(f"tmpfs: {result.stderr.decode().strip()}")
        image = where / "fs.img"
        with image.open("wb") as fh:
            fh.truncate(size_mib * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
        result = (
            made if made.returncode else _run("mount", "-o", "loop", str(image), str(mount_point))
        )
        if result.returncode != 0:
            tried.append(f"ext4 image: {result.stderr.decode().strip()}")
            raise RuntimeError("cannot mount a small filesystem: " + "; ".join(tried))
    try:
        yield mount_point
    finally:
        _run("umount", "-l", str(mount_point))


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its filesystem has no byte left; return the file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        os.fsync(fd)
    finally:
        os.close(fd)
    return filler


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` until ``cut``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, and
            # the socket would go on accepting.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.start()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def close(self) -> None:
        self.cut()


@contextlib.contextmanager
def table_away(platform: Platform, table: str) -> Iterator[None]:
    """Rename ``table`` for the block: every statement that reads it fails, for real."""
    with platform.db.write() as conn:
        conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        yield
    finally:
        with platform.db.write() as conn:
            conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
