"""The endpoint errors' HTTP statuses (``callhook.api.errors``, the one place they are mapped)."""

from __future__ import annotations

import pytest

from callhook import errors
from callhook.api.errors import status_for


@pytest.mark.parametrize(
    ("error", "status", "names"),
    [
        (errors.EndpointNotFound("ep_x"), 404, "ep_x"),
        (errors.EndpointLimitReached(20), 409, "url:"),
        (errors.DuplicateEndpointUrl("https://a.example.com/"), 409, "url:"),
        (errors.PrimaryEndpointUrl(), 400, "url:"),
        (errors.PrimaryEndpointDelete(), 409, "primary"),
    ],
)
def test_endpoint_errors_are_4xx_naming_what_is_wrong(
    error: errors.CallhookError, status: int, names: str
) -> None:
    assert status_for(error) == status
    assert names in error.message
