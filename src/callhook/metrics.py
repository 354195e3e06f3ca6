"""Prometheus metrics, in a registry per app (so tests and several apps never collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class Metrics:
    """Counters the worker and API update; queue gauges are read from the store at scrape."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "callhook_deliveries_total",
            "Finished attempts by result (delivered, retrying, failed) and event",
            ["result", "event"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "callhook_attempt_duration_seconds",
            "Duration of one delivery attempt",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
            registry=self.registry,
        )
        self.published = Counter(
            "callhook_events_published_total",
            "Events committed by the ingest path",
            ["event"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "callhook_requests_rejected_total",
            "Requests answered with an error, by status",
            ["status"],
            registry=self.registry,
        )
        self.endpoint_transitions = Counter(
            "callhook_endpoint_transitions_total",
            "Endpoint health transitions (and disable warnings) by state before, after and cause",
            ["before", "after", "cause"],
            registry=self.registry,
        )

    def endpoint_transition(self, before: str, after: str, cause: str) -> None:
        """Count one transition of an endpoint's state machine."""
        self.endpoint_transitions.labels(before, after, cause).inc()

    def watch_endpoints(self, read: Callable[[], dict[str, int]]) -> None:
        """Export endpoints by state (``callhook_endpoints{state=…}``), read at scrape time."""
        self.registry.register(_EndpointCollector(read))

    def watch_queue(self, read: Callable[[], tuple[int, int, float]]) -> None:
        """Export queue depth and oldest due age, read by ``read`` at scrape time."""
        self.registry.register(_QueueCollector(read))


class _QueueCollector(Collector):
    def __init__(self, read: Callable[[], tuple[int, int, float]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending, due, age = self._read()
        yield GaugeMetricFamily(
            "callhook_queue_pending", "Deliveries waiting for an attempt", value=pending
        )
        yield GaugeMetricFamily("callhook_queue_due", "Deliveries due now", value=due)
        yield GaugeMetricFamily(
            "callhook_queue_oldest_due_age_seconds",
            "How long the oldest due delivery has been waiting",
            value=age,
        )


class _EndpointCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "callhook_endpoints", "Endpoints by health state", labels=["state"]
        )
        for state, count in sorted(self._read().items()):
            family.add_metric([state], count)
        yield family
