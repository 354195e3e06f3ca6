"""Periodic work a worker does besides delivering: pruning what is past retention, sweeping
the per-call lines (head-of-line bound, maximum ages)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from datetime import timedelta

from callhook.core.clock import Clock
from callhook.settings import Settings
from callhook.store import ordering as lines
from callhook.store import prune as pruning
from callhook.store.db import Database

log = logging.getLogger("callhook.delivery")


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def prune_periodically(
    db: Database, settings: Settings, clock: Clock, stop: asyncio.Event, *, worker_id: str
) -> None:
    """Every ``prune_interval_minutes`` prune what is older than ``retention_days``, until
    ``stop``: off when the interval is 0. With ``retention_days`` 0 deliveries and events are
    kept, but expired sessions and old failed sign-ins are still pruned (``store.prune``)."""
    if settings.prune_interval_minutes <= 0:
        return
    older_than = timedelta(days=settings.retention_days) if settings.retention_days > 0 else None
    interval = settings.prune_interval_minutes * 60
    # Workers started together prune at different moments (a stable offset per worker).
    offset = 0.1 + 0.9 * (zlib.crc32(worker_id.encode()) % 1000) / 1000
    await _sleep(stop, offset * interval)
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(
                pruning.prune,
                db,
                now=clock.now(),
                older_than=older_than,
                batch_size=settings.prune_batch_size,
                should_stop=stop.is_set,
            )
        except Exception as exc:
            log.warning("prune failed", extra={"error": str(exc).strip()[:200]})
        else:
            if (
                report.deliveries
                or report.events
                or report.sessions
                or report.login_failures
                or report.alerts
            ):
                log.info(
                    "pruned",
                    extra={
                        "deliveries": report.deliveries,
                        "attempts": report.attempts,
                        "events": report.events,
                        "call_sequences": report.call_sequences,
                        "sessions": report.sessions,
                        "login_failures": report.login_failures,
                        "alerts": report.alerts,
                    },
                )
        await _sleep(stop, interval)


async def sweep_lines_periodically(
    db: Database, settings: Settings, clock: Clock, stop: asyncio.Event, *, wake: Callable[[], None]
) -> None:
    """Every ``ordering_sweep_seconds`` apply the head-of-line bound and the maximum ages to the
    open per-call lines (``store.ordering.sweep``), until ``stop``; ``wake`` the worker when
    deliveries became claimable. Off when the interval is 0."""
    interval = settings.ordering_sweep_seconds
    if interval <= 0:
        return
    while not stop.is_set():
        await _sleep(stop, interval)
        if stop.is_set():
            return
        try:
            report = await asyncio.to_thread(_sweep_once, db, clock)
        except Exception as exc:
            log.warning("line sweep failed", extra={"error": str(exc).strip()[:200]})
            continue
        if report.promoted:
            wake()
        if report.bypassed or report.expired:
            log.info(
                "lines swept",
                extra={
                    "bypassed": report.bypassed,
                    "expired": report.expired,
                    "promoted": report.promoted,
                },
            )


def _sweep_once(db: Database, clock: Clock) -> lines.SweepReport:
    now = clock.now()
    with db.read() as conn:
        policies = lines.policies(conn)
        if not lines.needs_sweep(conn, now=now, policies=policies):
            return lines.SweepReport()  # the usual case: no write transaction at all
    with db.write() as conn:
        return lines.sweep(conn, now=now, policies=policies)
