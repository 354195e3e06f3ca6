"""The fan-out decision (pure): an event and an account's endpoints → the deliveries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core.outcome import SkipReason
from callhook.core.retry import RetryPolicy
from callhook.events import SUBSCRIBABLE_EVENTS, TEST_EVENT
from callhook.publish import fan_out
from callhook.store.endpoints import Endpoint, EndpointState

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def ep(
    n: int,
    *,
    url: str | None = "https://x.example.com/",
    enabled: bool = True,
    events: tuple[str, ...] | None = ("sms",),
) -> Endpoint:
    return Endpoint(
        id=f"ep_{n}",
        account_id="acc_1",
        url=url,
        description="",
        enabled=enabled,
        subscribed_events=events,
        retry_policy=RetryPolicy.EXPONENTIAL,
        state=EndpointState.ACTIVE,
        primary=n == 0,
        created_at=T0,
        updated_at=T0,
    )


@pytest.mark.parametrize(
    ("endpoints", "event", "ids", "reason"),
    [
        (None, "sms", (), SkipReason.NO_WEBHOOK_URL),
        ([], "sms", (), SkipReason.NO_WEBHOOK_URL),
        ([ep(0, url=None)], "sms", (), SkipReason.NO_WEBHOOK_URL),
        ([ep(0, enabled=False), ep(1, enabled=False)], "sms", (), SkipReason.INTEGRATION_DISABLED),
        ([ep(0), ep(1, events=("voicemail",))], "rating", (), SkipReason.NOT_SUBSCRIBED),
        ([ep(0), ep(1, events=("voicemail",))], "sms", ("ep_0",), None),
        ([ep(0), ep(1, events=None)], "sms", ("ep_0", "ep_1"), None),
        ([ep(0, enabled=False), ep(1, events=None)], "sms", ("ep_1",), None),
        ([ep(0, url=None), ep(1, events=None)], "rating", ("ep_1",), None),
        # A test event verifies the endpoints: sent while disabled, whatever they subscribe.
        ([ep(0, enabled=False), ep(1, url=None)], TEST_EVENT, ("ep_0",), None),
    ],
)
def test_fan_out(
    endpoints: list[Endpoint] | None, event: str, ids: tuple[str, ...], reason: str | None
) -> None:
    plan = fan_out(endpoints, event)
    assert (plan.endpoint_ids, plan.skip_reason) == (ids, reason)


def test_only_narrows_to_one_endpoint() -> None:
    both = [ep(0), ep(1)]
    assert fan_out(both, TEST_EVENT, only="ep_1").endpoint_ids == ("ep_1",)
    assert fan_out(both, TEST_EVENT, only="ep_9").skip_reason == SkipReason.NO_WEBHOOK_URL


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.booleans(),
            st.none() | st.frozensets(st.sampled_from(SUBSCRIBABLE_EVENTS)),
        ),
        max_size=20,
    ),
    st.sampled_from(SUBSCRIBABLE_EVENTS),
)
def test_exactly_the_enabled_subscribed_endpoints_with_a_url(
    shapes: list[tuple[bool, bool, frozenset[str] | None]], event: str
) -> None:
    endpoints = [
        replace(
            ep(n, url="https://x.example.com/" if has_url else None, enabled=enabled),
            subscribed_events=None if events is None else tuple(sorted(events)),
        )
        for n, (has_url, enabled, events) in enumerate(shapes)
    ]
    plan = fan_out(endpoints, event)
    expected = tuple(e.id for e in endpoints if e.url and e.enabled and e.subscribes(event))
    assert plan.endpoint_ids == expected  # in the given order (primary first), once each
    assert (plan.skip_reason is None) == bool(expected)
