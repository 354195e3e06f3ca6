"""The mail edge: one alert mail through the configured SMTP server (aiosmtplib).

STARTTLS or implicit TLS as configured, certificates verified like deliveries' (the system
store, or only ``CALLHOOK_CA_BUNDLE``), ``CALLHOOK_SMTP_TIMEOUT`` for each step.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from callhook.alerts.config import SmtpConfig
from callhook.settings import Settings

log = logging.getLogger("callhook.alerts")


async def send(config: SmtpConfig, msg: EmailMessage, *, tls: ssl.SSLContext) -> str | None:
    """Send ``msg`` to its ``To`` addresses: None once the server took it for at least one
    recipient, else why not (one line, for the outbox's ``last_error``). Never raises, short
    of cancellation: a server that is down, slow, or refusing is an answer to retry later."""
    try:
        refused, _reply = await aiosmtplib.send(
            msg,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            start_tls=config.starttls,
            use_tls=config.tls,
            tls_context=tls,
            timeout=config.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return f"every recipient refused: {_describe(exc)}"
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        return _describe(exc)
    if refused:
        # Some recipients were refused, some taken: the taken ones must not get it twice, so
        # this counts as sent; the refusals are logged for the operator.
        log.warning(
            "alert mail refused for some recipients",
            extra={"refused": len(refused), "codes": sorted({r.code for r in refused.values()})},
        )
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The SMTP client's TLS context: certificates verified against the configured CA bundle
    (``CALLHOOK_CA_BUNDLE``) or the system store, TLS 1.2 or later, as for deliveries."""
    if settings.ca_bundle is not None:
        ctx = ssl.create_default_context(cafile=str(settings.ca_bundle))
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
