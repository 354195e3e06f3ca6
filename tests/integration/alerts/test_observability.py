"""The example Prometheus rules and Grafana dashboard in docs/observability/ name only metrics
Callhook exports, and the gauges read from the store count what is there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from callhook.alerts import AlertKind
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from callhook.store import alerts as outbox
from tests.factories import make_account, make_platform

DOCS = Path(__file__).resolve().parents[3] / "docs" / "observability"
RULES = DOCS / "callhook.rules.yml"
DASHBOARD = DOCS / "grafana-dashboard.json"
_NAME = re.compile(r"\bcallhook_[a-z0-9_]+")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported(platform: Platform) -> set[str]:
    """Every series name the registry can export, with or without samples yet (a labelled
    counter no one has incremented has none)."""
    names: set[str] = set()
    for family in platform.metrics.registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def _exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _referenced(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in _NAME.findall(expr)}


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return make_platform(tmp_path, clock=FakeClock())


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_metric_referenced_exists(platform: Platform, source: str) -> None:
    if source == "rules":
        exprs = [rule["expr"] for rule in _rules()]
    else:
        exprs = list(_exprs(orjson.loads(DASHBOARD.read_bytes())))
    referenced = _referenced(exprs)
    assert referenced, f"no callhook_ metric found in the {source}"
    assert referenced - _exported(platform) == set()


def test_the_dashboard_shows_every_metric(platform: Platform) -> None:
    referenced = _referenced(list(_exprs(orjson.loads(DASHBOARD.read_bytes()))))
    families = {f.name for f in platform.metrics.registry.collect()}
    shown = {f for f in families if any(n.startswith(f) for n in referenced)}
    assert shown == families


def test_every_rule_says_what_and_how_bad() -> None:
    for rule in _rules():
        assert rule["alert"].startswith("Callhook")
        assert rule["labels"]["severity"] in {"page", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_endpoint_and_alert_gauges_read_the_store(platform: Platform) -> None:
    make_account(platform, url="https://a.example.com/hook")
    make_account(platform, url="https://b.example.com/hook")
    disabled = make_account(platform, url="https://c.example.com/hook", enabled=False)
    make_account(platform)  # no URL: not an endpoint yet
    with platform.db.write() as conn:
        outbox.record_alert(
            conn,
            AlertKind.ENDPOINT_DISABLED,
            disabled.id,
            "ep_c",
            {"transition_at": "2026-01-15T10:30:00Z"},
            platform.clock.now(),
        )
    value = platform.metrics.registry.get_sample_value
    assert value("callhook_endpoints", {"state": "active"}) == 2
    assert value("callhook_endpoints", {"state": "disabled"}) == 1
    assert value("callhook_endpoints", {"state": "paused"}) == 0
    assert value("callhook_endpoints", {"state": "failing"}) == 0
    assert value("callhook_alerts_pending", {"channel": "email"}) == 1
    assert value("callhook_alerts_pending", {"channel": "webhook"}) == 1
