"""Prometheus metrics, in a registry per app (so tests and several apps never collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: The ``endpoint`` label's value for every endpoint past the first ``max_endpoint_series``.
OTHER_ENDPOINTS = "other"


class EndpointLabels:
    """Bounds the cardinality of an ``endpoint`` label: the first ``limit`` endpoint ids a
    process sees keep their own series, every later one is counted under ``"other"``. So a
    process exports at most ``limit + 1`` values per metric, whatever the number of endpoints
    (up to 20 per account, and accounts without bound); with the default 50 and the results
    ``delivered|retrying|failed`` that is at most 153 series for the attempts counter.
    Operators who need every endpoint read the store (dashboard, API), not Prometheus."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._admitted: set[str] = set()

    def of(self, endpoint_id: str) -> str:
        """The label value to use for ``endpoint_id``."""
        if endpoint_id in self._admitted:
            return endpoint_id
        if len(self._admitted) < self.limit:
            self._admitted.add(endpoint_id)
            return endpoint_id
        return OTHER_ENDPOINTS


class Metrics:
    """Counters the worker and API update; queue gauges are read from the store at scrape.

    Per-endpoint series (``callhook_endpoint_attempts_total``) are bounded by
    :class:`EndpointLabels` (``max_endpoint_series``, a setting); the other metrics have no
    endpoint or account label at all."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, max_endpoint_series: int = 50
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.endpoint_labels = EndpointLabels(max_endpoint_series)
        self.endpoint_attempts = Counter(
            "callhook_endpoint_attempts_total",
            "Finished attempts by endpoint (the first max_endpoint_series endpoints seen by this "
            'process; later ones as endpoint="other") and result',
            ["endpoint", "result"],
            registry=self.registry,
        )
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
        # Alerts (callhook.alerts.outbox): each counted once per channel when it ends.
        self.alerts_sent = Counter(
            "callhook_alerts_sent_total",
            "Alerts sent, by channel (webhook, email) and kind (endpoint.failing, ...)",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.alert_failures = Counter(
            "callhook_alert_send_failures_total",
            "Tries to send an alert that failed (retried later), by channel and kind",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.alerts_abandoned = Counter(
            "callhook_alerts_abandoned_total",
            "Alerts given up after CALLHOOK_ALERT_RETRY_HOURS of failed tries, by channel and kind",
            ["channel", "kind"],
            registry=self.registry,
        )

    def watch_queue(self, read: Callable[[], tuple[int, int, float]]) -> None:
        """Export queue depth and oldest due age, read by ``read`` at scrape time."""
        self.registry.register(_QueueCollector(read))

    def watch_alerts(self, read: Callable[[], Mapping[str, int]]) -> None:
        """Export alerts waiting to be sent per channel, read by ``read`` at scrape time."""
        self.registry.register(
            _LabelledGauge(
                "callhook_alerts_pending", "Alerts waiting to be sent, by channel", "channel", read
            )
        )

    def watch_endpoints(self, read: Callable[[], Mapping[str, int]]) -> None:
        """Export endpoints per state (active, paused, failing, disabled), read by ``read`` at
        scrape time."""
        self.registry.register(
            _LabelledGauge("callhook_endpoints", "Endpoints by state", "state", read)
        )


class _LabelledGauge(Collector):
    """One gauge with one label, its values read at scrape time."""

    def __init__(
        self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        self._name, self._doc, self._label, self._read = name, documentation, label, read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=[self._label])
        for value, count in sorted(self._read().items()):
            family.add_metric([value], count)
        yield family


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
