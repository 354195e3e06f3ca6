"""The bench's CPU readings from /proc: one thread of a process, and the PostgreSQL server."""

from __future__ import annotations

import os
import threading
import time

import psycopg
from bench.cluster import postgres_cpu_seconds, thread_cpu_seconds
from bench.phases import POSTGRES_URL


def test_a_query_is_counted_in_the_servers_cpu() -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        before = postgres_cpu_seconds()
        conn.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
        # Read while the backend lives, as the bench does (before it stops the workers): a
        # backend that has exited counts only once the postmaster has reaped it.
        assert postgres_cpu_seconds() > before


def test_a_busy_thread_is_not_counted_on_the_main_thread() -> None:
    pid = os.getpid()
    main_before = thread_cpu_seconds(pid, pid)
    ticks = 1 / os.sysconf("SC_CLK_TCK")
    spun: list[float] = []

    def spin() -> None:
        tid = threading.get_native_id()
        start = thread_cpu_seconds(pid, tid)
        while thread_cpu_seconds(pid, tid) - start < 20 * ticks:
            pass
        spun.append(thread_cpu_seconds(pid, tid) - start)

    worker = threading.Thread(target=spin)
    worker.start()
    while worker.is_alive():
        time.sleep(0.01)  # the main thread waits without using CPU
    assert spun
    assert spun[0] >= 20 * ticks
    assert thread_cpu_seconds(pid, pid) - main_before < spun[0]
