"""What a customer may set on an endpoint, checked before anything is written
(``callhook.store.endpoint_fields``): every refusal names its field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core.retry import RetryPolicy
from callhook.errors import InvalidRequest, PayloadInvalid, UnknownEvent
from callhook.events.names import SUBSCRIBABLE_EVENTS
from callhook.store import endpoint_fields as fields

EVENTS = sorted(SUBSCRIBABLE_EVENTS)


@given(st.lists(st.sampled_from(EVENTS)))
def test_catalog_order_is_the_catalogs_without_duplicates(names: list[str]) -> None:
    ordered = fields.catalog_order(names)
    assert set(ordered) == set(names)
    assert list(ordered) == [e for e in SUBSCRIBABLE_EVENTS if e in set(names)]


def test_catalog_order_drops_unknown_names() -> None:
    assert fields.catalog_order(["no_such_event", EVENTS[0]]) == (EVENTS[0],)


@given(st.lists(st.sampled_from(EVENTS)))
def test_checked_events_keeps_first_occurrences_in_order(names: list[str]) -> None:
    assert fields.checked_events(names) == list(dict.fromkeys(names))


@pytest.mark.parametrize("field", ["subscribed_events", "event"])
@pytest.mark.parametrize("bad", ["no_such_event", "", "INCOMING_CALL_START", " sms"])
def test_checked_events_names_the_field_and_the_first_unknown(field: str, bad: str) -> None:
    with pytest.raises(UnknownEvent) as info:
        fields.checked_events([EVENTS[0], bad, "another_unknown"], field=field)
    assert info.value.message.startswith(f"{field}: ")
    assert info.value.name == bad


@pytest.mark.parametrize("value", [p.value for p in RetryPolicy])
def test_policy_takes_every_policy(value: str) -> None:
    assert fields.policy(value) == RetryPolicy(value)


@pytest.mark.parametrize("value", ["", "EXPONENTIAL", "linear-ish", "none "])
def test_policy_refuses_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        fields.policy(value)
    assert info.value.message.startswith("retry_policy: ")


def test_description_up_to_the_limit() -> None:
    text = "x" * fields.MAX_DESCRIPTION
    assert fields.description(text) == text
    with pytest.raises(PayloadInvalid) as info:
        fields.description(text + "x")
    assert info.value.field == "description"


def test_ordering_values_leaves_out_what_was_not_given() -> None:
    assert fields.ordering_values(ordering=fields.UNSET, ordering_bound_seconds=60) == {
        "ordering_bound_seconds": 60
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ordering", "fifo"),
        ("ordering_bound_seconds", 0),
        ("ordering_bound_seconds", None),
        ("max_age_call_control_seconds", -1),
        ("max_age_bulk_seconds", 1.5),
        ("max_age_bulk_seconds", 86_401),
    ],
)
def test_ordering_values_refuse_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(PayloadInvalid) as info:
        fields.ordering_values(**{name: value})
    assert info.value.field == name


def test_ordering_values_take_null_maximum_ages() -> None:
    assert fields.ordering_values(max_age_bulk_seconds=None) == {"max_age_bulk_seconds": None}


def test_ordering_values_refuse_other_fields() -> None:
    with pytest.raises(TypeError):
        fields.ordering_values(url="https://example.com")
