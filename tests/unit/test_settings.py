"""Settings come from CALLHOOK_* variables and flags; nothing is read at import time."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhook.settings import Settings


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///./callhook.db"
    assert s.delivery_timeout == 2.0
    assert s.allow_unsafe_targets is False
    assert s.ca_bundle is None


def test_environment_is_parsed() -> None:
    s = Settings.from_env(
        {
            "CALLHOOK_DATABASE_URL": "sqlite:////tmp/x.db",
            "CALLHOOK_DELIVERY_TIMEOUT": "1.5",
            "CALLHOOK_ALLOW_UNSAFE_TARGETS": "yes",
            "CALLHOOK_CA_BUNDLE": "/etc/ca.pem",
            "CALLHOOK_PORT": "9000",
        }
    )
    assert s.database_url == "sqlite:////tmp/x.db"
    assert s.delivery_timeout == 1.5
    assert s.allow_unsafe_targets is True
    assert s.ca_bundle == Path("/etc/ca.pem")
    assert s.port == 9000


def test_flags_override_environment() -> None:
    s = Settings.from_env({"CALLHOOK_PORT": "9000"}, port=7000, host=None)
    assert s.port == 7000
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALLHOOK_ALLOW_UNSAFE_TARGETS", "maybe"),
        ("CALLHOOK_PORT", "eighty"),
        ("CALLHOOK_DELIVERY_TIMEOUT", "2s"),
    ],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
    assert s.with_(port=1).port == 1
