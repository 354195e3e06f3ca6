"""The worker's statements on the queue (claim, renew, release, complete) and whom a claim
leaves out.

Each statement is one write transaction (``store.queue`` has the SQL; a claim adds a read
transaction after its commit), run in a thread by the caller (``asyncio.to_thread``); each
raises what the database raises, and the caller decides whether to retry. ``left_out`` is the
pure part of the claim policy.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Set
from datetime import datetime, timedelta
from typing import TypeVar

from callhook.alerts.model import AlertKind
from callhook.core import health as machine
from callhook.core.clock import Clock, rfc3339
from callhook.core.health import Transition
from callhook.core.ids import Randomness, new_id
from callhook.core.outcome import ErrorClass
from callhook.settings import Settings
from callhook.store import alerts as alert_store
from callhook.store import claim_plan, endpoint_health, endpoint_secrets, queue
from callhook.store.db import Database
from callhook.store.queue import AttemptResult, ClaimedJob
from callhook.store.secretbox import SecretBox

log = logging.getLogger("callhook.delivery")

T = TypeVar("T")

#: A claim takes at most this many urgent jobs of an endpoint it otherwise leaves out for lack
#: of room, and does so for at most ``URGENT_ENDPOINTS`` endpoints (one statement each).
URGENT_PER_ENDPOINT = 4
URGENT_ENDPOINTS = 16
#: How long a worker leaves out an endpoint whose current signing secret its master key cannot
#: read before it looks again (the secret may be rotated, the worker restarted with the key).
UNREADABLE_PAUSE = timedelta(seconds=60)


def left_out(saturated: set[str]) -> set[str]:
    """Endpoints to leave out of the next claim for this worker's own reasons: those already
    holding their share of it (``saturated``: a slow endpoint must not fill every place). What
    the store says (paused, failing, throttled) is added inside the claim's transaction
    (``claim_plan.plan_claim``)."""
    return set(saturated)


class Claims:
    """One worker's queue statements, on its database, clock and randomness.

    After each claim, ``next_change`` (seconds, or None) says when something it left out may
    change (a token, a probe, a slow-down ending), ``capped`` whether an endpoint was held
    back by its ``max_in_flight`` alone, and ``cut_short`` the endpoints it took its per-claim
    most of (``worker_claim_per_endpoint``) or their whole allowance from the store (a
    throttled endpoint's tokens or room, a probe): they may have more due. ``exhaustive`` says
    whether a claim that took fewer than it asked for took everything claimable: on SQLite a
    claim runs alone (one writer) and sees every due row; on PostgreSQL concurrent claims skip
    each other's locked rows (``SKIP LOCKED``), so a short claim proves nothing. After each
    commit,
    ``transitions`` and ``slowed`` hold what the results changed, for the worker to act on
    (``take_changes``).

    A failed claim, completion or release may have left rows leased that no one will record: a
    claim whose commit went through while its answer was lost, a claim whose read afterwards
    failed and whose give-back failed too, a give-back that failed, results the recorder drops
    after its failed retries. Nothing announces when those leases run out, so each failure sets
    ``lapse_at`` one lease later (``lapse_from``: never earlier than it was) and calls
    ``on_lapse`` (from any thread): the worker claims again then rather than at the next poll,
    which may be minutes away. The first claim that starts at or after it clears it."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock,
        rng: Randomness,
        box: SecretBox,
        worker_id: str,
        on_lapse: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._on_lapse = on_lapse
        self._lapse_lock = threading.Lock()  # set from the recorder's and the claim's threads
        self._clock = clock
        self._rng = rng
        self._box = box
        self._worker_id = worker_id
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._per_endpoint = settings.worker_claim_per_endpoint
        self._secret_cache: dict[str, str] = {}  # decrypted secrets, by secret id
        # Endpoints whose current secret this worker's key cannot read, left out of its claims
        # until then (``UNREADABLE_PAUSE``); their rows go back at once for other workers.
        self._unreadable: dict[str, datetime] = {}
        self._rules = endpoint_health.rules_from(settings)
        self.next_change: float | None = None
        self.capped = False
        self.cut_short: set[str] = set()
        self.exhaustive = db.is_sqlite
        self.lapse_at: datetime | None = None
        self._transitions: list[tuple[str, Transition]] = []
        self._slowed: set[str] = set()

    def claim(
        self, limit: int, exclude: set[str], urgent_for: Set[str] = frozenset()
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs, fairly across endpoints (``queue.claim_rows``), none of
        the endpoints in ``exclude`` — but for those in ``urgent_for`` (excluded for lack of
        room here) up to ``URGENT_PER_ENDPOINT`` jobs whose claim key has come (call-control
        first: ``Dispatch.wanting_urgent``) — within what the endpoints' shared state allows
        (``plan_claim``): nothing for paused, disabled or slowed-down endpoints, one probe for a
        failing one whose probe is due, a throttled endpoint's allowance from its token bucket
        — all in the same write transaction, so every worker process shares one breaker and
        one bucket. What sending needs is read after that commits (``_load``). Raises what the
        database raises, after setting ``lapse_at``."""
        now = self._clock.now()
        with self._lapse_lock:
            if self.lapse_at is not None and self.lapse_at <= now:
                self.lapse_at = None  # this claim's ``now`` is past every lease left behind
        self._unreadable = {e: t for e, t in self._unreadable.items() if t > now}
        if self._unreadable:
            exclude = exclude | set(self._unreadable)
            urgent_for = set(urgent_for) - set(self._unreadable)
        return self._guarded(lambda: self._claim(now, limit, exclude, urgent_for))

    def _claim(
        self, now: datetime, limit: int, exclude: set[str], urgent_for: Set[str]
    ) -> list[ClaimedJob]:
        claim_id = new_id("clm", now, self._rng)
        claimed: list[queue.ClaimedRow] = []
        with self._db.write() as conn:
            plan = claim_plan.plan_claim(conn, now=now, want=limit, rules=self._rules)
            held = plan.excluded | set(plan.limited)
            alone = [(e, n, False) for e, n in plan.limited.items() if e not in exclude]
            urgent = sorted(set(urgent_for) - held)[:URGENT_ENDPOINTS]
            alone += [(e, URGENT_PER_ENDPOINT, True) for e in urgent]
            for endpoint_id, allowed, urgent_only in alone:
                if len(claimed) >= limit:
                    break
                claimed += queue.claim_rows(
                    conn,
                    worker_id=self._worker_id,
                    claim_id=claim_id,
                    now=now,
                    lease=self._lease,
                    limit=min(allowed, limit - len(claimed)),
                    only_endpoint=endpoint_id,
                    urgent_only=urgent_only,
                )
            general: list[queue.ClaimedRow] = []
            if len(claimed) < limit:
                general = queue.claim_rows(
                    conn,
                    worker_id=self._worker_id,
                    claim_id=claim_id,
                    now=now,
                    lease=self._lease,
                    limit=limit - len(claimed),
                    exclude_endpoints=exclude,
                    hold_endpoints=held,
                    per_endpoint=self._per_endpoint,
                )
                claimed += general
            # Before a probe or tokens are spent on them, rows of such endpoints whose current
            # secret this worker's key cannot read go back in this same transaction. Others
            # spend nothing at the claim: the read after it finds them (``late``, below), so
            # the usual claim pays no statement for this.
            spending = {c.endpoint_id for c in claimed} & (set(plan.probes) | set(plan.buckets))
            unreadable = endpoint_secrets.unreadable_current(
                conn, spending, self._box, known=self._secret_cache
            )
            if unreadable:
                back = [c.id for c in claimed if c.endpoint_id in unreadable]
                queue.release_ids(conn, back, claim_id=claim_id)
                claimed = [c for c in claimed if c.endpoint_id not in unreadable]
                general = [c for c in general if c.endpoint_id not in unreadable]
            taken = Counter(c.endpoint_id for c in claimed)
            claim_plan.settle_claim(conn, plan, taken, rules=self._rules)
        self.next_change = _seconds_until(plan.next_change, now)
        self.capped = plan.capped
        in_general = Counter(c.endpoint_id for c in general)
        self.cut_short = {e for e, n in in_general.items() if n >= self._per_endpoint}
        # An endpoint that gave its whole allowance (tokens, max_in_flight's room, a probe) may
        # have more due, and only the next plan says when: no change was announced for it.
        self.cut_short |= {e for e, n, urgent in alone if not urgent and taken[e] >= n}
        self._leave_out(unreadable, now)
        jobs = self._load(claimed, claim_id, now)
        late = {j.endpoint_id for j in jobs if j.unreadable_secret}  # rotated meanwhile
        if late:
            try:
                with self._db.write() as conn:
                    back = [j.delivery_id for j in jobs if j.endpoint_id in late]
                    queue.release_ids(conn, back, claim_id=claim_id)
            except Exception:  # their lease frees them (claim again then); the others go on
                log.exception("could not give back deliveries", extra={"claim_id": claim_id})
                self.lapse_from(self._clock.now())
            self._leave_out(late, now)
            jobs = [j for j in jobs if j.endpoint_id not in late]
        return jobs

    def _leave_out(self, endpoints: set[str], now: datetime) -> None:
        """Leave ``endpoints`` (current secret unreadable here) out of this worker's claims for
        ``UNREADABLE_PAUSE``: nothing is attempted or spent on them, a worker with the right
        key takes their deliveries, every other endpoint goes on. One error per endpoint and
        pause; the claim loop claims again at once (the claim was cut short)."""
        if not endpoints:
            return
        for endpoint_id in sorted(endpoints):
            log.error(
                "the endpoint's signing secret cannot be decrypted with this master key: its"
                " deliveries are left for a worker with the right key (or rotate the secret)",
                extra={"endpoint_id": endpoint_id, "worker": self._worker_id},
            )
            self._unreadable[endpoint_id] = now + UNREADABLE_PAUSE
        self.cut_short |= endpoints
        pause = UNREADABLE_PAUSE.total_seconds()
        self.next_change = pause if self.next_change is None else min(self.next_change, pause)

    def _load(
        self, claimed: list[queue.ClaimedRow], claim_id: str, now: datetime
    ) -> list[ClaimedJob]:
        """Read what sending needs for the rows just claimed, outside the write transaction
        (reading and unpacking the bodies held SQLite's one writer for about a third of a
        claim: docs/decisions.md). If the read fails, give the rows back (their probe or
        tokens stay spent) and raise its error; if even that fails, their lease frees them."""
        if not claimed:
            return []
        ids = [c.id for c in claimed]
        try:
            with self._db.read() as conn:
                return queue.load_claimed(
                    conn, ids, claim_id=claim_id, box=self._box, now=now, cache=self._secret_cache
                )
        except Exception:
            try:
                with self._db.write() as conn:
                    queue.release_ids(conn, ids, claim_id=claim_id)
            except Exception:
                log.exception(
                    "could not give back a claim that failed to load; its lease will",
                    extra={"claim_id": claim_id, "rows": len(ids)},
                )
            raise

    def renew(self, jobs: list[ClaimedJob]) -> set[str]:
        """Extend the leases of ``jobs`` still ours; returns the delivery ids renewed. (A failed
        renewal leaves nothing unrecorded: the worker still holds the jobs.)"""
        with self._db.write() as conn:
            return queue.renew_lease(conn, jobs, now=self._clock.now(), lease=self._lease)

    def release(self, jobs: list[ClaimedJob]) -> None:
        """Give ``jobs`` back unstarted, due at once for any worker."""

        def release() -> None:
            with self._db.write() as conn:
                queue.release(conn, jobs)

        self._guarded(release)

    def look_again_in(self, now: datetime) -> float:
        """Seconds (at least 2 ms; ``inf`` if nothing is known) until a claim may find what the
        last one could not: ``next_change`` or ``lapse_at``, whichever is sooner."""
        soonest = math.inf if self.next_change is None else self.next_change
        lapse_at = self.lapse_at
        if lapse_at is not None:
            soonest = min(soonest, (lapse_at - now).total_seconds())
        return max(soonest, 0.002)

    def lapse_from(self, when: datetime) -> None:
        """Leases this worker will not record may last until one lease after ``when`` (a failed
        statement, or a renewal that extended results being dropped): set ``lapse_at`` no
        earlier than that, and call ``on_lapse``."""
        with self._lapse_lock:
            until = when + self._lease
            self.lapse_at = until if self.lapse_at is None else max(self.lapse_at, until)
        if self._on_lapse is not None:
            self._on_lapse()

    def _guarded(self, statement: Callable[[], T]) -> T:
        """Run ``statement``; if it raises, ``lapse_from`` now (every lease it may have left
        behind ends within a lease) and re-raise."""
        try:
            return statement()
        except Exception:
            self.lapse_from(self._clock.now())
            raise

    def complete(self, batch: list[AttemptResult]) -> list[AttemptResult]:
        """Record ``batch`` and feed it to the endpoints' health, in one transaction; returns
        the results refused because their claim was lost. A delivery that failed for good
        raises its ``delivery.exhausted`` alert here (once per delivery; not one that expired)."""
        return self._guarded(lambda: self._complete(batch))

    def _complete(self, batch: list[AttemptResult]) -> list[AttemptResult]:
        now = self._clock.now()
        with self._db.write() as conn:
            stale = queue.complete(conn, batch)
            refused = {id(res) for res in stale}
            verdicts = [
                endpoint_health.Verdict(
                    endpoint_id=res.job.endpoint_id,
                    account_id=res.job.account_id,
                    verdict=machine.verdict(delivered=res.delivered, error_class=res.error_class),
                    at=res.started_at,
                    retry_after=res.retry_after,
                )
                for res in batch
                if id(res) not in refused
            ]
            transitions = endpoint_health.record(conn, verdicts, now=now, rules=self._rules)
            for res in batch:
                if id(res) in refused or res.delivered or res.next_attempt_at is not None:
                    continue
                if res.error_class == ErrorClass.EXPIRED:
                    # Too old for the endpoint's maximum age (issue 14): what the customer
                    # asked for, like a delivery that expires waiting, not a failure to warn of.
                    continue
                alert_store.record_alert(
                    conn,
                    AlertKind.DELIVERY_EXHAUSTED,
                    res.job.account_id,
                    res.job.endpoint_id,
                    {
                        "delivery_id": res.job.delivery_id,
                        "event": res.job.event,
                        "event_id": res.job.event_id,
                        "reason": res.error_class,
                        "url": res.job.url,
                        "transition_at": rfc3339(res.started_at),
                    },
                    now,
                )
        # Only once committed: a rolled-back batch changed nothing.
        self._transitions += transitions
        self._slowed |= {res.job.endpoint_id for res in batch if res.retry_after}
        return stale

    def take_changes(self) -> tuple[list[tuple[str, Transition]], set[str]]:
        """The transitions and the endpoints slowed down by a Retry-After since the last call."""
        changes = (self._transitions, self._slowed)
        self._transitions, self._slowed = [], set()
        return changes


def _seconds_until(when: datetime | None, now: datetime) -> float | None:
    return None if when is None else max(0.0, (when - now).total_seconds())
