"""Alert settings are checked at start: a bad one is a clear error naming the variable."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from callhook.alerts.config import alert_config
from callhook.cli.main import app
from callhook.errors import ConfigurationError
from callhook.settings import Settings
from callhook.signing import generate_secret

SECRET = generate_secret()


def test_nothing_configured_means_no_channels() -> None:
    config = alert_config(Settings())
    assert config.webhook is None
    assert config.smtp is None
    assert config.dashboard_url == "http://127.0.0.1:8000"


def test_full_configuration() -> None:
    config = alert_config(
        Settings(
            public_url="https://callhook.example/",
            operational_webhook_url="https://ops.example.com/callhook",
            operational_webhook_secret=SECRET,
            smtp_host="smtp.example.com",
            smtp_from="Callhook <alerts@callhook.example>",
            smtp_username="callhook",
            smtp_password="hunter2-hunter2",
        )
    )
    assert config.webhook is not None
    assert config.webhook.url == "https://ops.example.com/callhook"
    assert config.smtp is not None
    assert (config.smtp.host, config.smtp.port, config.smtp.starttls) == (
        "smtp.example.com",
        587,
        True,
    )
    assert config.smtp.sender == "Callhook <alerts@callhook.example>"
    assert config.dashboard_url == "https://callhook.example"
    # Secrets stay out of reprs (and so out of logs and tracebacks).
    assert SECRET not in repr(config)
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"operational_webhook_url": "http://ops.example.com/x"}, "OPERATIONAL_WEBHOOK_URL"),
        ({"operational_webhook_url": "https://10.0.0.8/x"}, "OPERATIONAL_WEBHOOK_URL"),
        ({"operational_webhook_url": "https://127.0.0.1/x"}, "OPERATIONAL_WEBHOOK_URL"),
        ({"operational_webhook_url": "https://u:p@ops.example.com/"}, "OPERATIONAL_WEBHOOK_URL"),
        ({"operational_webhook_url": "https://ops.example.com/"}, "OPERATIONAL_WEBHOOK_SECRET"),
        (
            {
                "operational_webhook_url": "https://ops.example.com/",
                "operational_webhook_secret": "whsec_",
            },
            "OPERATIONAL_WEBHOOK_SECRET",
        ),
        ({"operational_webhook_secret": SECRET}, "OPERATIONAL_WEBHOOK_URL"),
        ({"smtp_host": "smtp.example.com"}, "SMTP_FROM"),
        ({"smtp_host": "smtp://smtp.example.com", "smtp_from": "a@b.example"}, "SMTP_HOST"),
        ({"smtp_host": "smtp example", "smtp_from": "a@b.example"}, "SMTP_HOST"),
        ({"smtp_host": "smtp.example.com", "smtp_from": "not an address"}, "SMTP_FROM"),
        ({"smtp_host": "smtp.example.com", "smtp_from": "a@b.example, c@d.example"}, "SMTP_FROM"),
        ({"smtp_host": "smtp.example.com", "smtp_from": "a@b.example\nBcc: x@y.z"}, "SMTP_FROM"),
        (
            {"smtp_host": "smtp.example.com", "smtp_from": "a@b.example", "smtp_port": 0},
            "SMTP_PORT",
        ),
        (
            {"smtp_host": "smtp.example.com", "smtp_from": "a@b.example", "smtp_port": 70000},
            "SMTP_PORT",
        ),
        (
            {"smtp_host": "smtp.example.com", "smtp_from": "a@b.example", "smtp_username": "u"},
            "SMTP_USERNAME",
        ),
        (
            {"smtp_host": "smtp.example.com", "smtp_from": "a@b.example", "smtp_tls": True},
            "SMTP_STARTTLS",
        ),
        (
            {
                "smtp_host": "smtp.example.com",
                "smtp_from": "a@b.example",
                "smtp_starttls": False,
                "smtp_username": "u",
                "smtp_password": "p",
            },
            "SMTP_PASSWORD",
        ),
        ({"smtp_from": "a@b.example"}, "SMTP_HOST"),
        ({"alert_retry_hours": 0}, "ALERT_RETRY_HOURS"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    settings: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"CALLHOOK_{variable}"):
        alert_config(Settings(**settings))


def test_loopback_alert_receivers_are_for_development_only() -> None:
    settings = Settings(
        operational_webhook_url="https://127.0.0.1:9443/ops",
        operational_webhook_secret=SECRET,
        allow_unsafe_targets=True,
    )
    config = alert_config(settings)
    assert config.webhook is not None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CALLHOOK_OPERATIONAL_WEBHOOK_URL": "https://192.168.1.5/hook"},
            "CALLHOOK_OPERATIONAL_WEBHOOK_URL is refused",
        ),
        ({"CALLHOOK_SMTP_HOST": "smtp.example.com"}, "CALLHOOK_SMTP_FROM"),
        ({"CALLHOOK_SMTP_PORT": "submission"}, "CALLHOOK_SMTP_PORT"),
    ],
)
def test_the_cli_refuses_to_start(
    env: dict[str, str], message: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLHOOK_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "c.db").exists()
