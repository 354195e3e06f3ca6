"""Files that hold secrets are private (issue 11, class 8): the SQLite database, its -wal and
-shm, the write-lock file, the master key file (0600) and the wake directory (0700) are created
so whatever the umask, and a loose one found at start-up is made private with a warning."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from callhook.errors import ConfigurationError
from callhook.settings import Settings
from callhook.store.db import Database
from callhook.store.secretbox import load_secret_box
from callhook.store.wake import DatagramListener, wake_dir

UMASKS = [0o000, 0o002, 0o022, 0o027]


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_everything(db_file: Path) -> tuple[Database, DatagramListener]:
    """What a serving process creates: database (with WAL and SHM), write lock, key file, wake
    directory."""
    url = f"sqlite:///{db_file}"
    db = Database(url)
    with db.write() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (v)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    load_secret_box(Settings(database_url=url))
    directory = wake_dir(db)
    assert directory is not None
    listener = DatagramListener(directory, lambda: None).bind()
    return db, listener


def _private_files(db_file: Path) -> dict[str, Path]:
    return {
        "database": db_file,
        "wal": Path(f"{db_file}-wal"),
        "shm": Path(f"{db_file}-shm"),
        "write lock": Path(f"{db_file}.write-lock"),
        "key file": db_file.with_suffix(".key"),
    }


@pytest.mark.parametrize("mask", UMASKS, ids=[f"umask {m:03o}" for m in UMASKS])
def test_everything_is_created_private_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    db_file = tmp_path / "new" / "dir" / "callhook.db"
    with umask(mask):
        db, listener = _open_everything(db_file)
    try:
        for name, path in _private_files(db_file).items():
            assert path.exists(), name
            assert mode(path) == 0o600, (name, oct(mode(path)))
        assert mode(Path(f"{db_file}.wake")) == 0o700
        # Directories we create are private too.
        assert mode(db_file.parent) == 0o700
        assert mode(db_file.parent.parent) == 0o700
    finally:
        listener.stop()
        db.dispose()


def test_an_existing_directory_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    db, listener = _open_everything(tmp_path / "callhook.db")
    listener.stop()
    db.dispose()
    assert mode(tmp_path) == 0o755


LOOSE = [0o644, 0o640, 0o606, 0o666, 0o604]


@pytest.mark.parametrize("loose", LOOSE, ids=[f"{m:04o}" for m in LOOSE])
def test_loose_files_found_at_start_up_are_made_private_with_a_warning(
    tmp_path: Path, loose: int, caplog: pytest.LogCaptureFixture
) -> None:
    db_file = tmp_path / "callhook.db"
    db, listener = _open_everything(db_file)
    listener.stop()
    db.dispose()
    # As an older version (or a careless copy) would have left them, WAL and SHM included.
    files = _private_files(db_file)
    for name in ("wal", "shm"):
        files[name].touch()
    for path in files.values():
        path.chmod(loose)
    wake = Path(f"{db_file}.wake")
    wake.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="callhook.store"):
        db, listener = _open_everything(db_file)
    try:
        for name, path in files.items():
            assert mode(path) == 0o600, (name, oct(mode(path)))
        assert mode(wake) == 0o700
        warned = {
            getattr(r, "path", None)
            for r in caplog.records
            if r.getMessage().startswith("file was accessible")
        }
        assert warned == {str(p) for p in files.values()} | {str(wake)}
        assert {getattr(r, "old_mode", None) for r in caplog.records} >= {f"{loose:04o}"}
    finally:
        listener.stop()
        db.dispose()


def test_private_files_raise_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db, listener = _open_everything(tmp_path / "callhook.db")
    listener.stop()
    db.dispose()
    with caplog.at_level(logging.WARNING, logger="callhook.store"):
        db, listener = _open_everything(tmp_path / "callhook.db")
    listener.stop()
    db.dispose()
    assert not [r for r in caplog.records if r.getMessage().startswith("file was accessible")]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may reach (pytest's own temporary directories are root's only)."""
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="callhook-modes-"))
    directory.chmod(0o777)
    yield directory
    shutil.rmtree(directory)


def test_a_loose_file_of_another_user_is_refused_with_the_fix_to_make(shared_dir: Path) -> None:
    """A process may not change another user's file: it refuses to start, saying how to fix it.
    (A forked child that drops to ``nobody`` opens a root-owned 0644 database.)"""
    db_file = shared_dir / "callhook.db"
    db_file.touch()
    db_file.chmod(0o644)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                Database(f"sqlite:///{db_file}")
            except ConfigurationError as exc:
                os.write(write_end, exc.message.encode())
                status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child was not refused"
    assert message == (
        f"{db_file} is accessible to other users (mode 0644) and this process cannot change "
        f"it: run `chmod 600 {db_file}` as its owner"
    )
    assert mode(db_file) == 0o644
