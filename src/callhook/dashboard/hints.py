"""What to do about a failed attempt: one hint per failure class. Pure."""

from __future__ import annotations

_HINTS = {
    "timeout": (
        "Your endpoint did not answer within the {timeout:g}-second limit. Return 200 at once and "
        "do the work in a background job; check that the server is not stuck or overloaded."
    ),
    "tls_error": (
        "The TLS handshake failed: the certificate is expired, self-signed, issued for another "
        "host name, or its chain is incomplete. Use a certificate from a public CA that covers "
        "this host name and serve the full chain."
    ),
    "redirect": (
        "Your endpoint answered with a redirect, and redirects are never followed. Set the final "
        "URL (look for http→https, a missing or extra trailing slash, or a www. prefix)."
    ),
    "http_status": (
        "Your endpoint answered, but not with a 2xx status. 401/403: check that signature "
        "verification uses the current signing secret. 404: check the path. 5xx: look at your "
        "server's logs. Any 2xx counts as delivered."
    ),
    "connect_error": (
        "No connection could be made: check that the host name resolves publicly, that the port "
        "is open in your firewall and that a server is listening on it."
    ),
    "unsafe_target": (
        "The host resolves to a private or otherwise non-public address. Webhooks are only "
        "delivered to publicly routable addresses; point the URL at a public host."
    ),
    "integration_disabled": (
        "Nothing was sent: the integration is disabled or has no URL. Enable it on the webhook "
        "settings page."
    ),
    "no_signing_secret": (
        "Nothing was sent: the integration had no active signing secret to sign with. Create "
        "one on the webhook settings page (rotate the secret), then redeliver."
    ),
    "window_expired": (
        "Nothing was sent: the 24-hour retry window had ended when this attempt came due, so "
        "the delivery was given up. Fix the endpoint, then redeliver it (a redelivery starts a "
        "new window)."
    ),
    "internal_error": (
        "Callhook failed while making or recording this attempt; it is on our side, logged, "
        "and the delivery is retried on the normal schedule."
    ),
}


def hint(error_class: str | None, *, timeout: float = 2.0) -> str | None:
    """The hint for an attempt's ``error_class`` (None for a success or an unknown class)."""
    if error_class is None:
        return None
    template = _HINTS.get(error_class)
    return template.format(timeout=timeout) if template else None


LABELS = {
    "timeout": "timeout",
    "tls_error": "TLS error",
    "redirect": "redirect",
    "http_status": "non-2xx status",
    "connect_error": "connection failed",
    "unsafe_target": "unsafe target",
    "integration_disabled": "integration disabled",
    "no_signing_secret": "no signing secret",
    "window_expired": "retry window over",
    "internal_error": "internal error",
}


def label(error_class: str | None) -> str:
    """A short human name for an error class (the class itself when unknown)."""
    if error_class is None:
        return ""
    return LABELS.get(error_class, error_class)
