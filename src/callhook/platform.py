"""The wiring of one Callhook process: settings, database, clock, randomness, publisher.

Built once by an entry point (``create_app``, the CLI, a test) and passed down; nothing here is
global.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from callhook.alerts.config import alert_config
from callhook.core.clock import Clock, SystemClock
from callhook.core.ids import Randomness
from callhook.metrics import Metrics
from callhook.publish import Publisher
from callhook.settings import Settings
from callhook.store import alerts, endpoint_status, queue, wake
from callhook.store.db import Database
from callhook.store.secretbox import SecretBox, load_secret_box


@dataclass
class Platform:
    settings: Settings
    db: Database
    clock: Clock
    rng: Randomness
    box: SecretBox
    publisher: Publisher
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: Randomness | None = None,
        db: Database | None = None,
    ) -> Platform:
        # Refuse bad alert settings at start, not when the first alert cannot go out.
        alert_config(settings)
        clock = clock or SystemClock()
        rng = rng or random.SystemRandom()
        db = db or Database(settings.database_url)
        platform = cls(
            settings=settings,
            db=db,
            clock=clock,
            rng=rng,
            box=load_secret_box(settings, db),
            publisher=Publisher(db, clock=clock, rng=rng),
            metrics=Metrics(max_endpoint_series=settings.metrics_max_endpoint_series),
        )
        # Workers in other processes on the same SQLite file hear of each commit through the
        # wake directory (PostgreSQL's trigger NOTIFYs on its own; in-process workers are woken
        # by whoever runs them, through the same on_publish).
        pinger = wake.pinger_for(db)
        if pinger is not None:
            platform.publisher.on_publish(pinger.ping)
        platform.metrics.watch_queue(platform.queue_stats)
        platform.metrics.watch_alerts(platform.alert_backlog)
        platform.metrics.watch_endpoints(platform.endpoint_states)
        return platform

    def queue_stats(self) -> tuple[int, int, float]:
        with self.db.read() as conn:
            return queue.queue_stats(conn, now=self.clock.now())

    def alert_backlog(self) -> dict[str, int]:
        """Alerts waiting to be sent, per channel (the ``callhook_alerts_pending`` gauge)."""
        with self.db.read() as conn:
            return alerts.pending_by_channel(conn)

    def endpoint_states(self) -> dict[str, int]:
        """Endpoints per state (the ``callhook_endpoints`` gauge)."""
        with self.db.read() as conn:
            return endpoint_status.counts_by_state(conn)
