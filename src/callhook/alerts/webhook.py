"""The operational webhook edge: one alert, signed and POSTed to the operator's URL.

Sent through the delivery ``Sender``, so the rules are the deliveries': HTTPS only,
certificates verified (``CALLHOOK_CA_BUNDLE``), no redirects, every connection to an address
the resolver vetted, ``CALLHOOK_DELIVERY_TIMEOUT`` per try. Signed with both header schemes
(``callhook.signing``) under ``CALLHOOK_OPERATIONAL_WEBHOOK_SECRET``; the alert's id is the
``webhook-id``, the same on every try.
"""

from __future__ import annotations

from datetime import datetime

from callhook.alerts.config import WebhookConfig
from callhook.alerts.model import Alert
from callhook.alerts.payload import webhook_body
from callhook.delivery.sender import Sender, request_headers


async def send(
    sender: Sender, config: WebhookConfig, alert: Alert, *, link: str, now: datetime
) -> str | None:
    """POST ``alert`` once: None if the receiver answered 2xx, else why not (one line, for
    the outbox's ``last_error``). Never raises, short of cancellation (``Sender.send``)."""
    body = webhook_body(alert, link=link)
    headers = request_headers(
        body=body,
        event_id=alert.id,
        event=str(alert.kind),
        attempt=max(alert.attempts, 1),
        timestamp=int(now.timestamp()),
        secrets=(config.secret,),
    )
    result = await sender.send(url=config.url, body=body, headers=headers)
    outcome = result.outcome
    if outcome.delivered:
        return None
    if outcome.status_code is not None:
        return f"HTTP {outcome.status_code} from the operational webhook URL"
    return f"{outcome.error_class}: {outcome.message}"
