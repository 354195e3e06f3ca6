"""JSON log lines carry the one time format of everything Callhook writes as JSON."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import orjson
import pytest

from callhook.logs import JsonFormatter


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """A local time zone hours away from UTC, as on an operator's laptop."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (1736937000.0, "2025-01-15T10:30:00.000Z"),
        (1736937000.123456, "2025-01-15T10:30:00.123Z"),
        (1751365799.9995, "2025-07-01T10:29:59.999Z"),
    ],
)
def test_log_times_are_utc_with_milliseconds(
    far_from_utc: None, created: float, expected: str
) -> None:
    record = logging.makeLogRecord({"msg": "hello", "name": "callhook.test", "levelname": "INFO"})
    record.created = created
    record.msecs = (created - int(created)) * 1000
    doc = orjson.loads(JsonFormatter().format(record))
    assert doc["ts"] == expected
