"""The ``endpoint`` label's cardinality is bounded (issue 13, item 7)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callhook.metrics import OTHER_ENDPOINTS, EndpointLabels, Metrics


@given(st.lists(st.text(min_size=1, max_size=8), max_size=200), st.integers(0, 20))
def test_at_most_limit_endpoints_keep_their_own_value(ids: list[str], limit: int) -> None:
    labels = EndpointLabels(limit)
    values = [labels.of(i) for i in ids]
    assert len(set(values) - {OTHER_ENDPOINTS}) <= limit
    # Stable: an endpoint admitted once keeps its value; the first ``limit`` distinct are kept.
    first = list(dict.fromkeys(ids))[:limit]
    assert all(labels.of(i) == i for i in first)


def test_the_attempts_counter_has_bounded_series() -> None:
    metrics = Metrics(max_endpoint_series=2)
    for n in range(10):
        endpoint = metrics.endpoint_labels.of(f"ep_{n}")
        metrics.endpoint_attempts.labels(endpoint, "delivered").inc()
    samples = {
        s.labels["endpoint"]: s.value
        for family in metrics.registry.collect()
        if family.name == "callhook_endpoint_attempts"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert samples == {"ep_0": 1.0, "ep_1": 1.0, OTHER_ENDPOINTS: 8.0}
