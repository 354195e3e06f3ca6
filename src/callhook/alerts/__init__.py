"""Alerts about endpoints and deliveries, on two channels: operational webhooks to the
operator and mail to each account's dashboard users.

How it fits together: the endpoint state machine calls ``store.alerts.record_alert`` inside
its own transaction (durable with the transition, idempotent per endpoint and transition);
the ``AlertSender`` (``callhook.alerts.outbox``), a watched side task of every worker, drains
that outbox with retries, so a slow or dead SMTP server or alert receiver never slows
delivery. ``model`` names the kinds, ``payload`` and ``render`` are pure (dedupe key, webhook
body, mail), ``config`` checks the settings at start, ``webhook`` and ``email`` are the thin
edges that send.

Only the pure parts are imported here (the store imports ``model``); the edges load aiohttp
and aiosmtplib when used.
"""

from callhook.alerts.model import Alert, AlertKind, AlertStatus, Channel

__all__ = ["Alert", "AlertKind", "AlertStatus", "Channel"]
