"""An endpoint's health: one state machine for every place that shows or acts on it. Pure.

States (:class:`EndpointState`):

* ``active``: deliver freely. ``failure_threshold`` consecutive failures that count against
  the endpoint (any failed attempt except those in ``outcome.NOT_THE_ENDPOINT``: nothing was
  sent, or Callhook failed) make it ``failing``.
* ``failing``: the breaker is open. Nothing is attempted until ``next_probe_at``; then one
  attempt (a *probe*, half-open) is allowed — claiming it pushes ``next_probe_at`` on by the
  cooldown, so several workers sharing the store never probe at once. A successful probe makes
  the endpoint ``active`` at once (alert ``endpoint.recovered``); a failed one doubles the
  cooldown (``probe_cooldown`` up to ``max_probe_cooldown``). Failing continuously for
  ``disable_after`` disables it, after a warning at each of ``warnings`` before that deadline.
* ``paused`` (by the customer or the operator): new events are accepted and wait ``pending``, in
  order; nothing is attempted. Resuming makes it ``active``.
* ``disabled`` (automatically, or by hand): nothing is attempted and new events are recorded as
  not delivered. Resuming (re-enabling) makes it ``active``.

Every change of state is a :class:`Transition` with its time, cause and the alert to send (if
any), for the endpoint event log, the alerts outbox and the metrics. Times are passed in; the
functions return a new :class:`Health` and never mutate.

Warnings are sent in order, each once: ``warned_before`` is the smallest offset (seconds before
the disable deadline) already warned about. When a check comes late and several warnings are due
at once (a worker outage, a ``disable_after`` shorter than a warning offset), only the most
urgent one is sent and the others are marked sent: one mail, not three in a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from callhook.alerts.model import AlertKind
from callhook.core.outcome import NOT_THE_ENDPOINT


class EndpointState(StrEnum):
    """Where an endpoint stands; see the module docstring."""

    ACTIVE = "active"
    PAUSED = "paused"
    FAILING = "failing"
    DISABLED = "disabled"


class Cause(StrEnum):
    """Why a transition happened (kept in the endpoint event log)."""

    FAILURES = "consecutive_failures"
    PROBE_SUCCEEDED = "probe_succeeded"
    DELIVERED = "delivered"
    PAUSED = "paused"
    RESUMED = "resumed"
    DISABLED_BY_HAND = "disabled_by_hand"
    AUTO_DISABLED = "failing_too_long"
    URL_CHANGED = "url_changed"
    TEST_SUCCEEDED = "test_succeeded"
    DISABLE_WARNING = "disable_warning"


class AttemptVerdict(StrEnum):
    """What one attempt says about the endpoint."""

    SUCCESS = "success"
    FAILURE = "failure"
    #: Nothing was sent, or Callhook failed: says nothing about the endpoint.
    NEUTRAL = "neutral"


def verdict(*, delivered: bool, error_class: str | None) -> AttemptVerdict:
    """Classify an attempt's result for the health machine."""
    if delivered:
        return AttemptVerdict.SUCCESS
    if error_class in NOT_THE_ENDPOINT:
        return AttemptVerdict.NEUTRAL
    return AttemptVerdict.FAILURE


DEFAULT_WARNINGS: Final = (timedelta(hours=24), timedelta(hours=1))


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The operator's settings for the machine.

    ``disable_after`` None never disables automatically. ``warnings`` are offsets before the
    disable deadline (any order; non-positive ones are ignored).
    """

    failure_threshold: int = 5
    probe_cooldown: timedelta = timedelta(seconds=30)
    max_probe_cooldown: timedelta = timedelta(minutes=5)
    disable_after: timedelta | None = timedelta(days=5)
    warnings: tuple[timedelta, ...] = DEFAULT_WARNINGS

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.probe_cooldown <= timedelta(0) or self.max_probe_cooldown < self.probe_cooldown:
            raise ValueError("probe cooldowns must be positive, the maximum at least the first")
        if self.disable_after is not None and self.disable_after <= timedelta(0):
            raise ValueError("disable_after must be positive (or None for never)")


@dataclass(frozen=True, slots=True)
class Health:
    """One endpoint's health record (what the store keeps per endpoint)."""

    state: EndpointState = EndpointState.ACTIVE
    #: When the current state began.
    since: datetime | None = None
    consecutive_failures: int = 0
    #: Start of the current failing streak (first failure of it), while ``failing``.
    failing_since: datetime | None = None
    next_probe_at: datetime | None = None
    #: The cooldown that the next failed probe doubles (seconds; 0 before the first).
    probe_cooldown: float = 0.0
    #: Smallest warning offset (seconds before the deadline) already warned about.
    warned_before: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, or a warning within ``failing`` (``before == after``)."""

    before: EndpointState
    after: EndpointState
    cause: Cause
    at: datetime
    alert: AlertKind | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """The result of feeding the machine one input."""

    health: Health
    transitions: tuple[Transition, ...] = ()


def disable_deadline(health: Health, policy: HealthPolicy) -> datetime | None:
    """When a failing endpoint will be disabled unless it recovers (None if not failing)."""
    if health.state is not EndpointState.FAILING or policy.disable_after is None:
        return None
    assert health.failing_since is not None
    return health.failing_since + policy.disable_after


def _move(
    health: Health,
    to: EndpointState,
    cause: Cause,
    now: datetime,
    alert: AlertKind | None = None,
    **data: Any,
) -> Step:
    after = Health(state=to, since=now)
    return Step(after, (Transition(health.state, to, cause, now, alert, data),))


def record_attempt(
    health: Health, result: AttemptVerdict, now: datetime, policy: HealthPolicy
) -> Step:
    """Feed one attempt's verdict (a probe's, while failing). Attempts made while paused or
    disabled (a test event; one already under way) change counts, not the state — except that
    a success is never held against the endpoint. ``now`` is when the attempt started: a
    failure that started before the endpoint began failing is not a failed probe."""
    if result is AttemptVerdict.NEUTRAL:
        return Step(health)
    if result is AttemptVerdict.SUCCESS:
        if health.state is EndpointState.FAILING:
            assert health.failing_since is not None
            return _move(
                health,
                EndpointState.ACTIVE,
                Cause.PROBE_SUCCEEDED,
                now,
                AlertKind.ENDPOINT_RECOVERED,
                failing_since=health.failing_since,
                outage_seconds=(now - health.failing_since).total_seconds(),
            )
        if health.consecutive_failures:
            return Step(replace(health, consecutive_failures=0))
        return Step(health)
    failures = health.consecutive_failures + 1
    if health.state is EndpointState.FAILING:
        if health.since is not None and now <= health.since:
            # An attempt that was under way when the endpoint began failing: not a probe.
            return Step(replace(health, consecutive_failures=failures))
        cooldown = min(
            max(health.probe_cooldown * 2, policy.probe_cooldown.total_seconds()),
            policy.max_probe_cooldown.total_seconds(),
        )
        return Step(
            replace(
                health,
                consecutive_failures=failures,
                probe_cooldown=cooldown,
                next_probe_at=now + timedelta(seconds=cooldown),
            )
        )
    if health.state is EndpointState.ACTIVE and failures >= policy.failure_threshold:
        cooldown = policy.probe_cooldown.total_seconds()
        failing = Health(
            state=EndpointState.FAILING,
            since=now,
            consecutive_failures=failures,
            failing_since=now,
            next_probe_at=now + timedelta(seconds=cooldown),
            probe_cooldown=cooldown,
        )
        data: dict[str, Any] = {"consecutive_failures": failures}
        deadline = disable_deadline(failing, policy)
        if deadline is not None:
            data["disable_at"] = deadline
        tripped = Transition(
            health.state, failing.state, Cause.FAILURES, now, AlertKind.ENDPOINT_FAILING, data
        )
        # A disable deadline closer than a warning offset: that warning is due now.
        return _then(Step(failing, (tripped,)), check(failing, now, policy))
    return Step(replace(health, consecutive_failures=failures))


def _then(first: Step, second: Step) -> Step:
    return Step(second.health, first.transitions + second.transitions)


def claim_probe(health: Health, now: datetime) -> Health | None:
    """A failing endpoint's probe is due: the health with ``next_probe_at`` pushed on by the
    current cooldown (so no other worker probes meanwhile), or None if no attempt may start."""
    if health.state is not EndpointState.FAILING:
        return None
    if health.next_probe_at is not None and now < health.next_probe_at:
        return None
    return replace(health, next_probe_at=now + timedelta(seconds=max(health.probe_cooldown, 1.0)))


def may_deliver(health: Health) -> bool:
    """Whether deliveries are claimed freely (only ``active``; ``failing`` probes one by one)."""
    return health.state is EndpointState.ACTIVE


def check(health: Health, now: datetime, policy: HealthPolicy) -> Step:
    """The passage of time: warnings falling due, and automatic disabling at the deadline."""
    deadline = disable_deadline(health, policy)
    if deadline is None:
        return Step(health)
    if now >= deadline:
        return _move(
            health,
            EndpointState.DISABLED,
            Cause.AUTO_DISABLED,
            now,
            AlertKind.ENDPOINT_DISABLED,
            failing_since=health.failing_since,
            consecutive_failures=health.consecutive_failures,
        )
    left = (deadline - now).total_seconds()
    offsets = sorted(
        (w.total_seconds() for w in policy.warnings if w > timedelta(0)),
        reverse=True,
    )
    due = [
        o
        for o in offsets
        if o >= left and (health.warned_before is None or o < health.warned_before)
    ]
    if not due:
        return Step(health)
    most_urgent = min(due)
    transition = Transition(
        health.state,
        health.state,
        Cause.DISABLE_WARNING,
        now,
        AlertKind.ENDPOINT_DISABLE_WARNING,
        {
            "disable_at": deadline,
            "warning_seconds": most_urgent,
            "failing_since": health.failing_since,
        },
    )
    return Step(replace(health, warned_before=most_urgent), (transition,))


def next_check_at(health: Health, policy: HealthPolicy) -> datetime | None:
    """When :func:`check` next has something to do (a warning or the deadline), or None."""
    deadline = disable_deadline(health, policy)
    if deadline is None:
        return None
    pending = [
        deadline - w
        for w in policy.warnings
        if w > timedelta(0)
        and (health.warned_before is None or w.total_seconds() < health.warned_before)
    ]
    return min([deadline, *pending])


def pause(health: Health, now: datetime, *, by: str) -> Step:
    """Pause (customer or operator ``by``). Pausing a paused endpoint changes nothing.

    Raises ``ValueError`` for a disabled endpoint: resume it first (a pause would hide why it
    is disabled)."""
    if health.state is EndpointState.PAUSED:
        return Step(health)
    if health.state is EndpointState.DISABLED:
        raise ValueError("the endpoint is disabled; resume it before pausing it")
    return _move(health, EndpointState.PAUSED, Cause.PAUSED, now, None, by=by)


def resume(health: Health, now: datetime, *, by: str) -> Step:
    """Resume a paused, disabled or failing endpoint: ``active`` at once, counts reset (the
    customer says it is ready; the next failures trip it again). An active one is unchanged."""
    if health.state is EndpointState.ACTIVE:
        return Step(health)
    return _move(health, EndpointState.ACTIVE, Cause.RESUMED, now, None, by=by)


def disable(health: Health, now: datetime, *, by: str) -> Step:
    """Disable by hand. Disabling a disabled endpoint changes nothing."""
    if health.state is EndpointState.DISABLED:
        return Step(health)
    return _move(health, EndpointState.DISABLED, Cause.DISABLED_BY_HAND, now, None, by=by)


def reset(health: Health, now: datetime, cause: Cause) -> Step:
    """The customer fixed something (a new URL, a test event that succeeded): a failing
    endpoint is ``active`` again at once; the failure count of any other is cleared. Paused
    and disabled endpoints stay so (only resume changes that)."""
    if health.state is EndpointState.FAILING:
        return _move(health, EndpointState.ACTIVE, cause, now, AlertKind.ENDPOINT_RECOVERED)
    if health.consecutive_failures:
        return Step(replace(health, consecutive_failures=0))
    return Step(health)
