"""The endpoint health machine: active → failing → warnings → disabled; probes; pause/resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callhook.alerts.model import AlertKind
from callhook.core import health as h
from callhook.core.health import AttemptVerdict, Cause, EndpointState, Health

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
POLICY = h.HealthPolicy(failure_threshold=3)
FAIL, OK, NEUTRAL = AttemptVerdict.FAILURE, AttemptVerdict.SUCCESS, AttemptVerdict.NEUTRAL


def _feed(health: Health, results: list[AttemptVerdict], now: datetime = T0) -> h.Step:
    transitions: tuple[h.Transition, ...] = ()
    for result in results:
        step = h.record_attempt(health, result, now, POLICY)
        health, transitions = step.health, transitions + step.transitions
    return h.Step(health, transitions)


def _failing(now: datetime = T0) -> Health:
    return _feed(Health(since=T0), [FAIL] * 3, now).health


@pytest.mark.parametrize(
    ("delivered", "error_class", "expected"),
    [
        (True, None, OK),
        (False, "timeout", FAIL),
        (False, "http_status", FAIL),
        (False, "redirect", FAIL),
        (False, "unsafe_target", FAIL),
        (False, "integration_disabled", NEUTRAL),
        (False, "window_expired", NEUTRAL),
        (False, "internal_error", NEUTRAL),
        (False, "no_signing_secret", NEUTRAL),
    ],
)
def test_verdicts(delivered: bool, error_class: str | None, expected: AttemptVerdict) -> None:
    assert h.verdict(delivered=delivered, error_class=error_class) is expected


def test_threshold_consecutive_failures_make_it_failing_with_one_alert() -> None:
    step = _feed(Health(since=T0), [FAIL, FAIL, FAIL])
    assert step.health.state is EndpointState.FAILING
    assert step.health.failing_since == T0
    assert step.health.next_probe_at == T0 + timedelta(seconds=30)
    [t] = step.transitions
    assert (t.before, t.after, t.cause, t.alert) == (
        EndpointState.ACTIVE,
        EndpointState.FAILING,
        Cause.FAILURES,
        AlertKind.ENDPOINT_FAILING,
    )
    assert t.data["disable_at"] == T0 + timedelta(days=5)


@pytest.mark.parametrize("interruption", [OK])
def test_a_success_resets_the_streak(interruption: AttemptVerdict) -> None:
    step = _feed(Health(since=T0), [FAIL, FAIL, interruption, FAIL, FAIL])
    assert step.health.state is EndpointState.ACTIVE
    assert step.health.consecutive_failures == 2


def test_neutral_results_neither_count_nor_reset() -> None:
    step = _feed(Health(since=T0), [FAIL, NEUTRAL, FAIL, NEUTRAL, FAIL])
    assert step.health.state is EndpointState.FAILING


def test_probe_claim_pushes_the_next_probe_so_only_one_worker_probes() -> None:
    failing = _failing()
    assert h.claim_probe(failing, T0 + timedelta(seconds=29)) is None
    claimed = h.claim_probe(failing, T0 + timedelta(seconds=30))
    assert claimed is not None
    assert claimed.next_probe_at is not None
    assert h.claim_probe(claimed, T0 + timedelta(seconds=31)) is None
    assert h.claim_probe(Health(), T0) is None
    assert not h.may_deliver(failing)
    assert h.may_deliver(Health())


def test_failed_probes_double_the_cooldown_up_to_the_maximum() -> None:
    health, now, gaps = _failing(), T0, []
    for _ in range(6):
        now = health.next_probe_at or now
        health = h.record_attempt(health, FAIL, now, POLICY).health
        assert health.next_probe_at is not None
        gaps.append((health.next_probe_at - now).total_seconds())
    assert gaps == [60, 120, 240, 300, 300, 300]
    assert health.state is EndpointState.FAILING
    assert health.failing_since == T0


def test_first_success_recovers_at_once() -> None:
    later = T0 + timedelta(hours=2)
    step = h.record_attempt(_failing(), OK, later, POLICY)
    assert step.health == Health(state=EndpointState.ACTIVE, since=later)
    [t] = step.transitions
    assert t.alert is AlertKind.ENDPOINT_RECOVERED
    assert t.cause is Cause.PROBE_SUCCEEDED
    assert t.data == {"failing_since": T0, "outage_seconds": 7200.0}


def test_failing_then_warnings_then_disabled_each_once() -> None:
    """An hourly check for six days: 24 h warning, 1 h warning, disabled — once each."""
    health, alerts = _failing(), []
    for hour in range(1, 24 * 6):
        step = h.check(health, T0 + timedelta(hours=hour), POLICY)
        health = step.health
        alerts += [(t.alert, t.at - T0) for t in step.transitions]
    assert alerts == [
        (AlertKind.ENDPOINT_DISABLE_WARNING, timedelta(days=4)),
        (AlertKind.ENDPOINT_DISABLE_WARNING, timedelta(days=5, hours=-1)),
        (AlertKind.ENDPOINT_DISABLED, timedelta(days=5)),
    ]
    assert health.state is EndpointState.DISABLED


def test_late_checks_send_only_the_most_urgent_warning() -> None:
    step = h.check(_failing(), T0 + timedelta(days=5, minutes=-30), POLICY)
    [t] = step.transitions
    assert t.data["warning_seconds"] == 3600
    assert h.check(step.health, T0 + timedelta(days=5, minutes=-10), POLICY).transitions == ()


def test_a_short_disable_after_warns_when_failing_starts() -> None:
    policy = h.HealthPolicy(failure_threshold=1, disable_after=timedelta(hours=2))
    step = h.record_attempt(Health(since=T0), FAIL, T0, policy)
    assert [t.alert for t in step.transitions] == [
        AlertKind.ENDPOINT_FAILING,
        AlertKind.ENDPOINT_DISABLE_WARNING,
    ]
    assert step.transitions[1].data["warning_seconds"] == 24 * 3600
    assert h.next_check_at(step.health, policy) == T0 + timedelta(hours=1)


def test_never_disabled_when_disable_after_is_none() -> None:
    policy = h.HealthPolicy(failure_threshold=1, disable_after=None)
    health = h.record_attempt(Health(), FAIL, T0, policy).health
    assert h.check(health, T0 + timedelta(days=365), policy).transitions == ()
    assert h.next_check_at(health, policy) is None


def test_next_check_at_follows_the_warnings() -> None:
    health = _failing()
    assert h.next_check_at(health, POLICY) == T0 + timedelta(days=4)
    health = h.check(health, T0 + timedelta(days=4), POLICY).health
    assert h.next_check_at(health, POLICY) == T0 + timedelta(days=5, hours=-1)
    health = h.check(health, T0 + timedelta(days=5, hours=-1), POLICY).health
    assert h.next_check_at(health, POLICY) == T0 + timedelta(days=5)


def test_pause_and_resume() -> None:
    paused = h.pause(_failing(), T0, by="customer")
    assert paused.health.state is EndpointState.PAUSED
    assert paused.transitions[0].data == {"by": "customer"}
    assert h.pause(paused.health, T0, by="x").transitions == ()
    # While paused nothing is attempted but a test event may be: it does not unpause.
    assert h.record_attempt(paused.health, OK, T0, POLICY).health.state is EndpointState.PAUSED
    assert h.record_attempt(paused.health, FAIL, T0, POLICY).health.state is EndpointState.PAUSED
    resumed = h.resume(paused.health, T0, by="customer")
    assert resumed.health == Health(state=EndpointState.ACTIVE, since=T0)
    assert resumed.transitions[0].cause is Cause.RESUMED
    assert h.resume(resumed.health, T0, by="x").transitions == ()


def test_disabled_cannot_be_paused_but_can_be_resumed() -> None:
    disabled = h.disable(Health(), T0, by="operator").health
    with pytest.raises(ValueError, match="disabled"):
        h.pause(disabled, T0, by="customer")
    assert h.disable(disabled, T0, by="x").transitions == ()
    assert h.resume(disabled, T0, by="customer").health.state is EndpointState.ACTIVE


def test_reset_after_a_new_url_or_a_successful_test() -> None:
    step = h.reset(_failing(), T0, Cause.URL_CHANGED)
    assert step.health.state is EndpointState.ACTIVE
    assert step.transitions[0].alert is AlertKind.ENDPOINT_RECOVERED
    counted = _feed(Health(), [FAIL, FAIL]).health
    assert h.reset(counted, T0, Cause.TEST_SUCCEEDED).health.consecutive_failures == 0
    paused = h.pause(Health(), T0, by="c").health
    assert h.reset(paused, T0, Cause.URL_CHANGED).health == paused


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        h.HealthPolicy(failure_threshold=0)
    with pytest.raises(ValueError):
        h.HealthPolicy(disable_after=timedelta(0))
    with pytest.raises(ValueError):
        h.HealthPolicy(
            probe_cooldown=timedelta(seconds=60), max_probe_cooldown=timedelta(seconds=1)
        )


_INPUTS = st.lists(
    st.tuples(
        st.sampled_from(["ok", "fail", "neutral", "pause", "resume", "disable", "check", "url"]),
        st.integers(min_value=0, max_value=3 * 24 * 3600),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(_INPUTS)
def test_invariants_under_any_sequence(inputs: list[tuple[str, int]]) -> None:
    """Whatever happens: each warning offset alerts at most once per streak, every transition
    moves between the states it says, a failing endpoint has a streak start and a probe time,
    and states other than failing carry neither."""
    health, now = Health(since=T0), T0
    warned: list[float] = []
    policy = h.HealthPolicy(failure_threshold=2, disable_after=timedelta(days=1))
    for action, gap in inputs:
        now += timedelta(seconds=gap)
        before = health
        if action in ("ok", "fail", "neutral"):
            result = {"ok": OK, "fail": FAIL, "neutral": NEUTRAL}[action]
            step = h.record_attempt(health, result, now, policy)
        elif action == "pause":
            if health.state is EndpointState.DISABLED:
                continue
            step = h.pause(health, now, by="t")
        elif action == "resume":
            step = h.resume(health, now, by="t")
        elif action == "disable":
            step = h.disable(health, now, by="t")
        elif action == "check":
            step = h.check(health, now, policy)
        else:
            step = h.reset(health, now, Cause.URL_CHANGED)
        state = before.state
        for t in step.transitions:
            assert t.before is state
            state = t.after
            if t.alert is AlertKind.ENDPOINT_DISABLE_WARNING:
                warned.append(t.data["warning_seconds"])
            elif t.after is not EndpointState.FAILING:
                warned = []
        assert len(warned) == len(set(warned))
        health = step.health
        assert health.state is state
        failing = health.state is EndpointState.FAILING
        assert (health.failing_since is not None) is failing
        assert (health.next_probe_at is not None) is failing
        if failing and health.failing_since is not None:
            assert now < health.failing_since + timedelta(days=1) or action != "check"


def test_failures_under_way_when_it_tripped_are_not_failed_probes() -> None:
    failing = _failing()
    after = h.record_attempt(failing, FAIL, T0, POLICY).health
    assert after.next_probe_at == failing.next_probe_at
    assert after.consecutive_failures == failing.consecutive_failures + 1
