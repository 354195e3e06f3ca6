"""The alert channels' settings, checked once at start: ``alert_config(settings)``.

Every process that builds a platform checks them (``Platform.create``; the CLI before that,
as a usage error), so a bad setting stops the process with a message naming the variable
instead of surfacing as an alert that never arrives. Rules:

* ``CALLHOOK_OPERATIONAL_WEBHOOK_URL`` is vetted exactly like an endpoint URL
  (``core.urlvet.parse_webhook_url``: HTTPS, no credentials, no private or loopback address
  unless ``CALLHOOK_ALLOW_UNSAFE_TARGETS``); each connection is vetted again when sent, as for
  deliveries. It needs ``CALLHOOK_OPERATIONAL_WEBHOOK_SECRET``, a signing secret as strong as
  an endpoint's (``signing.check_secret``), and the secret needs the URL.
* ``CALLHOOK_SMTP_HOST`` is a host name or address, not a URL; ``CALLHOOK_SMTP_FROM`` is
  required with it and must be one address; the port is 1–65535; a user name needs a password
  and the other way round; STARTTLS and TLS are not both on; a password is never sent on a
  connection that is not encrypted (unless ``CALLHOOK_ALLOW_UNSAFE_TARGETS``, for a local
  test server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr

from callhook.core.urlvet import parse_webhook_url
from callhook.errors import ConfigurationError, InvalidSecret, UnsafeURL
from callhook.settings import Settings
from callhook.signing import check_secret

_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    tls: bool = False
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """The channels in use (None: not configured, its alerts are recorded as ``skipped``),
    the base of dashboard links, and how long an alert is retried."""

    webhook: WebhookConfig | None
    smtp: SmtpConfig | None
    dashboard_url: str
    retry_horizon: timedelta
    poll_interval: float


def alert_config(settings: Settings) -> AlertConfig:
    """The checked alert settings. Raises ``ConfigurationError`` naming the variable."""
    if settings.alert_retry_hours <= 0:
        raise ConfigurationError("CALLHOOK_ALERT_RETRY_HOURS must be more than 0")
    if settings.alert_poll_interval <= 0:
        raise ConfigurationError("CALLHOOK_ALERT_POLL_INTERVAL must be more than 0")
    return AlertConfig(
        webhook=_webhook(settings),
        smtp=_smtp(settings),
        dashboard_url=(settings.public_url or f"http://{settings.host}:{settings.port}").rstrip(
            "/"
        ),
        retry_horizon=timedelta(hours=settings.alert_retry_hours),
        poll_interval=settings.alert_poll_interval,
    )


def _webhook(settings: Settings) -> WebhookConfig | None:
    url, secret = settings.operational_webhook_url, settings.operational_webhook_secret
    if not url:
        if secret:
            raise ConfigurationError(
                "CALLHOOK_OPERATIONAL_WEBHOOK_SECRET is set but CALLHOOK_OPERATIONAL_WEBHOOK_URL "
                "is not"
            )
        return None
    try:
        vetted = parse_webhook_url(url, allow_unsafe=settings.allow_unsafe_targets)
    except UnsafeURL as exc:
        raise ConfigurationError(f"CALLHOOK_OPERATIONAL_WEBHOOK_URL is refused: {exc}") from exc
    if not secret:
        raise ConfigurationError(
            "CALLHOOK_OPERATIONAL_WEBHOOK_URL needs CALLHOOK_OPERATIONAL_WEBHOOK_SECRET "
            "(whsec_ and base64 of 32 random bytes: echo whsec_$(openssl rand -base64 32))"
        )
    try:
        check_secret(secret)
    except InvalidSecret as exc:
        raise ConfigurationError(f"CALLHOOK_OPERATIONAL_WEBHOOK_SECRET: {exc}") from exc
    return WebhookConfig(url=vetted.url, secret=secret)


def _smtp(settings: Settings) -> SmtpConfig | None:
    host = (settings.smtp_host or "").strip()
    if not host:
        for name in ("smtp_from", "smtp_username", "smtp_password"):
            if getattr(settings, name):
                raise ConfigurationError(
                    f"CALLHOOK_{name.upper()} is set but CALLHOOK_SMTP_HOST is not"
                )
        return None
    if not _HOST.match(host) or "://" in host:
        raise ConfigurationError(
            f"CALLHOOK_SMTP_HOST must be a host name or address (like smtp.example.com), "
            f"not {host[:100]!r}"
        )
    if not 1 <= settings.smtp_port <= 65535:
        raise ConfigurationError(
            f"CALLHOOK_SMTP_PORT must be between 1 and 65535, not {settings.smtp_port}"
        )
    if settings.smtp_timeout <= 0:
        raise ConfigurationError("CALLHOOK_SMTP_TIMEOUT must be more than 0 seconds")
    sender = _sender(settings.smtp_from)
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        raise ConfigurationError(
            "CALLHOOK_SMTP_USERNAME and CALLHOOK_SMTP_PASSWORD go together: set both or neither"
        )
    if settings.smtp_starttls and settings.smtp_tls:
        raise ConfigurationError(
            "CALLHOOK_SMTP_STARTTLS and CALLHOOK_SMTP_TLS are exclusive: STARTTLS upgrades a "
            "plain connection (port 587), TLS encrypts from the first byte (port 465)"
        )
    encrypted = settings.smtp_starttls or settings.smtp_tls
    if settings.smtp_password and not encrypted and not settings.allow_unsafe_targets:
        raise ConfigurationError(
            "CALLHOOK_SMTP_PASSWORD would be sent unencrypted: turn on CALLHOOK_SMTP_STARTTLS "
            "or CALLHOOK_SMTP_TLS"
        )
    return SmtpConfig(
        host=host,
        port=settings.smtp_port,
        sender=sender,
        username=settings.smtp_username or None,
        password=settings.smtp_password or None,
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        timeout=settings.smtp_timeout,
    )


def _sender(raw: str | None) -> str:
    """``CALLHOOK_SMTP_FROM`` as a header value: ``alerts@example.com`` or
    ``Callhook <alerts@example.com>``."""
    if not raw or not raw.strip():
        raise ConfigurationError("CALLHOOK_SMTP_HOST needs CALLHOOK_SMTP_FROM (the sender address)")
    if "\n" in raw or "\r" in raw or "," in raw:
        raise ConfigurationError("CALLHOOK_SMTP_FROM must be one address on one line")
    name, address = parseaddr(raw.strip())
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or " " in address:
        raise ConfigurationError(
            f"CALLHOOK_SMTP_FROM must be an address like alerts@example.com, not {raw[:100]!r}"
        )
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError) as exc:
        raise ConfigurationError(
            f"CALLHOOK_SMTP_FROM must be an address like alerts@example.com, not {raw[:100]!r}"
        ) from exc
