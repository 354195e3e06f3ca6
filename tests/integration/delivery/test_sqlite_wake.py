"""SQLite wake-ups: datagram listeners and pingers on real Unix sockets in a real directory."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callhook.store import notify
from callhook.store.db import Database
from callhook.store.wake import SUFFIX, DatagramListener, Pinger, wake_dir
from tests import factories
from tests.factories import make_account, publish_sample


class Wakes:
    """A thread-safe ``wake`` callback that counts its calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self) -> None:
        with self._lock:
            self.count += 1

    def reached(self, n: int) -> Callable[[], bool]:
        return lambda: self.count == n


def eventually(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until ``predicate()`` (a safety net for the listener thread, not a threshold)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def sockets_in(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(SUFFIX))


@pytest.fixture
def listeners() -> Iterator[list[DatagramListener]]:
    """Listeners a test started; each is stopped afterwards."""
    started: list[DatagramListener] = []
    yield started
    for listener in started:
        listener.stop()


def listen(directory: Path, started: list[DatagramListener]) -> tuple[DatagramListener, Wakes]:
    wakes = Wakes()
    listener = DatagramListener(directory, wakes).start()
    started.append(listener)
    eventually(lambda: wakes.count == 1)  # the wake every start makes
    return listener, wakes


def test_wake_dir_is_beside_a_database_file_only(tmp_path: Path) -> None:
    file_db = Database(f"sqlite:///{tmp_path / 'data' / 'callhook.db'}")
    memory_dbs = [Database("sqlite://"), Database("sqlite:///:memory:")]
    try:
        assert wake_dir(file_db) == tmp_path / "data" / "callhook.db.wake"
        for db in memory_dbs:
            assert wake_dir(db) is None
            assert notify.listener_for(db, Wakes()) is None
    finally:
        for db in [file_db, *memory_dbs]:
            db.dispose()


def test_listener_wakes_once_on_start_and_once_per_ping(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / "callhook.db.wake"
    listener, wakes = listen(directory, listeners)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert listener.path is not None
    assert stat.S_ISSOCK(os.lstat(listener.path).st_mode)
    pinger = Pinger(directory)
    for n in (2, 3, 4):
        pinger.ping()
        eventually(wakes.reached(n))
    assert listener.datagrams == 3
    assert pinger.sent == 3


def test_queued_datagrams_make_one_wake(tmp_path: Path) -> None:
    directory = tmp_path / "callhook.db.wake"
    wakes = Wakes()
    listener = DatagramListener(directory, wakes).bind()  # bound, not reading yet
    try:
        pinger = Pinger(directory)
        for _ in range(5):
            pinger.ping()
        assert pinger.sent == 5
        listener.start()
        eventually(lambda: wakes.count == 2)
    finally:
        listener.stop()
    assert listener.datagrams == 5
    assert wakes.count == 2  # one for the start, one for the whole burst


def test_stop_ends_the_thread_and_unlinks_the_socket(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / "callhook.db.wake"
    listener, _ = listen(directory, listeners)
    assert listener.running
    assert len(sockets_in(directory)) == 1
    listener.stop(timeout=10)
    assert not listener.running
    assert sockets_in(directory) == []
    listener.stop()  # twice is harmless
    pinger = Pinger(directory)
    pinger.ping()
    assert pinger.sent == 0


def test_stop_before_start_unlinks_the_socket(tmp_path: Path) -> None:
    directory = tmp_path / "callhook.db.wake"
    listener = DatagramListener(directory, Wakes()).bind()
    assert len(sockets_in(directory)) == 1
    listener.stop()
    assert sockets_in(directory) == []


def test_stale_sockets_are_unlinked_and_other_files_left_alone(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / "callhook.db.wake"
    live, wakes = listen(directory, listeners)
    # What a SIGKILLed worker leaves behind: a socket file nobody is bound to.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(directory / f"1-dead{SUFFIX}"))
    dead.close()
    (directory / f"notes{SUFFIX}").write_text("not a socket")
    (directory / "README").write_text("not ours")
    pinger = Pinger(directory)
    pinger.ping()
    assert pinger.removed == 1
    assert not (directory / f"1-dead{SUFFIX}").exists()
    assert (directory / f"notes{SUFFIX}").read_text() == "not a socket"
    assert (directory / "README").exists()
    eventually(lambda: wakes.count == 2)  # the live listener was still pinged
    assert live.path is not None
    assert live.path.exists()


def test_publishing_with_no_directory_or_no_listeners(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.db.wake"
    pinger = Pinger(missing)
    pinger.ping()
    assert not missing.exists()  # pinging never creates the directory
    missing.mkdir()
    pinger.ping()
    assert pinger.sent == 0
    with factories.use_backend("sqlite"):
        platform = factories.make_platform(tmp_path)
    account = make_account(platform, url="https://127.0.0.1:9/hook")
    assert publish_sample(platform, account.id).delivery_id is not None
    assert not (tmp_path / "callhook.db.wake").exists()


def test_listing_is_reused_until_the_directory_changes(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / "callhook.db.wake"
    listen(directory, listeners)
    old = time.time_ns() - 60 * 1_000_000_000  # well past any racy-mtime window
    os.utime(directory, ns=(old, old))
    pinger = Pinger(directory)
    pinger.ping()
    assert pinger.sent == 1
    # A second listener, with the directory's mtime put back: the cached listing is used.
    listen(directory, listeners)
    os.utime(directory, ns=(old, old))
    pinger.ping()
    assert pinger.sent == 2
    os.utime(directory)  # now the directory has changed: it is listed again
    pinger.ping()
    assert pinger.sent == 4


def test_a_listener_bound_after_a_ping_is_reached(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / "callhook.db.wake"
    _, first = listen(directory, listeners)
    pinger = Pinger(directory)
    pinger.ping()
    _, second = listen(directory, listeners)
    pinger.ping()
    eventually(lambda: first.count == 3 and second.count == 2)


def test_a_directory_too_deep_for_sun_path_still_works(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / ("d" * 120) / "callhook.db.wake"
    directory.parent.mkdir()
    assert len(os.fsencode(directory / f"{os.getpid()}-000000000000{SUFFIX}")) > 108
    listener, wakes = listen(directory, listeners)
    assert listener.path is not None
    assert listener.path.parent == directory
    Pinger(directory).ping()
    eventually(lambda: wakes.count == 2)


def test_listener_binds_again_when_its_socket_is_removed(
    tmp_path: Path, listeners: list[DatagramListener]
) -> None:
    directory = tmp_path / "callhook.db.wake"
    listener, wakes = listen(directory, listeners)
    shutil.rmtree(directory)
    eventually(lambda: listener.binds == 2 and len(sockets_in(directory)) == 1)
    eventually(lambda: wakes.count == 2)  # the wake after re-binding
    Pinger(directory).ping()
    eventually(lambda: wakes.count == 3)


def test_listener_for_falls_back_to_polling_when_it_cannot_bind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'callhook.db'}")
    try:
        (tmp_path / "callhook.db.wake").write_text("a file where the directory should be")
        with caplog.at_level(logging.WARNING, logger="callhook.store.notify"):
            assert notify.listener_for(db, Wakes()) is None
    finally:
        db.dispose()
    assert "polling only" in caplog.text


def test_a_publish_through_the_platform_wakes_a_listener_on_another_connection(
    tmp_path: Path,
) -> None:
    with factories.use_backend("sqlite"):
        platform = factories.make_platform(tmp_path)
    account = make_account(platform, url="https://127.0.0.1:9/hook")
    # Its own Database: nothing but the wake directory links it to the publisher.
    other = Database(platform.settings.database_url)
    wakes = Wakes()
    listener = notify.listener_for(other, wakes)
    try:
        assert isinstance(listener, DatagramListener)
        eventually(lambda: wakes.count == 1)
        publish_sample(platform, account.id, seed=1)
        eventually(lambda: wakes.count == 2)
        publish_sample(platform, account.id, seed=2)
        eventually(lambda: wakes.count == 3)
    finally:
        if listener is not None:
            listener.stop()
        other.dispose()
    assert listener.datagrams == 2
