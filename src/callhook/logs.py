"""Structured logging: one JSON object per line. Callers never pass secrets or tokens."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """``{"ts": "2025-01-15T10:30:00.123Z", "level", "logger", "msg", …extra fields}``: the
    time in UTC with milliseconds, the one format of every JSON Callhook writes."""

    def __init__(self) -> None:
        super().__init__()
        self.converter = time.gmtime  # the default, localtime, would be labelled "Z" wrongly

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """Route ``callhook.*`` logs to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("callhook")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
