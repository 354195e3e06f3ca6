"""Callhook: durable telephony events delivered as signed HTTPS webhooks."""

__version__ = "0.1.0"
