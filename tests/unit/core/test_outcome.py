"""Outcome classification: success is any 2xx; every failure has a reason class."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhook.core import outcome
from callhook.dashboard import hints


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    result = outcome.from_status(status)
    assert result.delivered
    assert result.error_class is None


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_3xx_is_a_redirect_failure(status: int) -> None:
    result = outcome.from_status(status)
    assert not result.delivered
    assert result.error_class == "redirect"
    assert result.retryable


@pytest.mark.parametrize(
    ("status", "retryable", "retry_after"),
    [
        (400, True, False),
        (401, True, False),
        (404, True, False),
        (410, False, False),
        (429, True, True),
        (500, True, False),
        (502, True, False),
        (503, True, True),
    ],
)
def test_other_statuses(status: int, retryable: bool, retry_after: bool) -> None:
    result = outcome.from_status(status)
    assert not result.delivered
    assert result.error_class == "http_status"
    assert result.status_code == status
    assert result.retryable is retryable
    assert result.honours_retry_after is retry_after


def test_failure_requires_a_known_class() -> None:
    assert outcome.failure("timeout", "slow").error_class == "timeout"
    with pytest.raises(ValueError, match="unknown error class"):
        outcome.failure("gremlins", "?")


@pytest.mark.parametrize("error_class", outcome.ERROR_CLASSES)
def test_every_error_class_is_documented_and_explained(error_class: str) -> None:
    api = (Path(__file__).parents[3] / "docs" / "api.md").read_text("utf-8")
    assert f"| `{error_class}` |" in api  # the error-class table of GET /deliveries/{id}
    assert hints.hint(error_class)  # the dashboard says what to do
    assert error_class in hints.LABELS
    assert outcome.NOT_THE_ENDPOINT.issubset(outcome.ERROR_CLASSES)
