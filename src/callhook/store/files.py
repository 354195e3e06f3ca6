"""The files a SQLite deployment keeps beside its database, created private and kept private.

A SQLite database holds encrypted signing secrets, token hashes and payloads with phone numbers,
and the key file beside it decrypts the secrets, so every one of these is owner-only whatever
the process's umask:

=============================  ======  =========================================
``<db>``                       0600    created empty by us before SQLite opens it
``<db>-wal``, ``<db>-shm``     0600    SQLite gives them the database file's mode
``<db>.write-lock``            0600    the writers' ``flock`` (``store.db``)
``<db-stem>.key``              0600    the master key file (``store.secretbox``)
``<db>.wake/``                 0700    workers' wake sockets (``store.wake``)
the database's directory       0700    only when we create it (an existing one is left alone)
=============================  ======  =========================================

At start-up (``check_sqlite_files``, called whenever a ``Database`` opens a SQLite file) a file
of that list that is readable or writable by others is **fixed**: its mode is set to the one
above and a warning names the file and its old mode (its contents may already have been read).
A file that cannot be fixed (owned by another user) is refused with ``ConfigurationError``.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from callhook.errors import ConfigurationError

log = logging.getLogger("callhook.store")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def sidecar_files(database: Path) -> list[Path]:
    """SQLite's and Callhook's files beside ``database`` (may not exist yet)."""
    return [
        database,
        Path(f"{database}-wal"),
        Path(f"{database}-shm"),
        Path(f"{database}.write-lock"),
        database.with_suffix(".key"),
    ]


def wake_directory(database: Path) -> Path:
    return Path(os.path.abspath(database) + ".wake")


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` (and missing parents) mode 0700; an existing one is left alone."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """``os.open(path, flags | O_CREAT)``; a file it creates is 0600 whatever the umask (an
    existing one is opened as it is: ``check_sqlite_files`` is what reports and fixes those)."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        if flags & os.O_EXCL:
            raise
        return os.open(path, flags)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken bits away
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private_database(database: Path) -> None:
    """Make sure the database file exists, 0600, before SQLite opens it (SQLite would create it
    0644 less the umask, and gives the ``-wal``/``-shm`` files that same mode)."""
    make_private_dirs(database.parent)
    os.close(open_private(database))


def check_sqlite_files(database: Path) -> list[Path]:
    """Tighten every existing file of ``sidecar_files`` (0600) and the wake directory (0700)
    that others may read or write; return the paths fixed. ``ConfigurationError`` when one
    cannot be fixed."""
    fixed = [p for p in sidecar_files(database) if _tighten(p, PRIVATE_FILE)]
    wake = wake_directory(database)
    if _tighten(wake, PRIVATE_DIR):
        fixed.append(wake)
    return fixed


def make_private_file(path: Path) -> bool:
    """Tighten an existing file others may read or write to 0600 (with a warning); True when
    it was changed. ``ConfigurationError`` when it cannot be changed."""
    return _tighten(path, PRIVATE_FILE)


def make_private_dir(path: Path) -> bool:
    """As ``make_private_file``, for a directory (0700)."""
    return _tighten(path, PRIVATE_DIR)


def _tighten(path: Path, mode: int) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    old = stat.S_IMODE(st.st_mode)
    if old & 0o077 == 0:
        return False
    try:
        os.chmod(path, mode)
    except PermissionError as exc:
        raise ConfigurationError(
            f"{path} is accessible to other users (mode {old:04o}) and this process cannot "
            f"change it: run `chmod {mode:o} {path}` as its owner"
        ) from exc
    log.warning(
        "file was accessible to other users; made private",
        extra={"path": str(path), "old_mode": f"{old:04o}", "new_mode": f"{mode:04o}"},
    )
    return True
