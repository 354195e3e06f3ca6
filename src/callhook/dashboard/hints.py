"""What to do about a failed attempt: one hint per failure class. Pure."""

from __future__ import annotations

from callhook.core.outcome import ErrorClass

_HINTS: dict[str, str] = {
    ErrorClass.TIMEOUT: (
        "Your endpoint did not answer within the {timeout:g}-second limit. Return 200 at once and "
        "do the work in a background job; check that the server is not stuck or overloaded."
    ),
    ErrorClass.TLS_ERROR: (
        "The TLS handshake failed: the certificate is expired, self-signed, issued for another "
        "host name, or its chain is incomplete. Use a certificate from a public CA that covers "
        "this host name and serve the full chain."
    ),
    ErrorClass.REDIRECT: (
        "Your endpoint answered with a redirect, and redirects are never followed. Set the final "
        "URL (look for http→https, a missing or extra trailing slash, or a www. prefix)."
    ),
    ErrorClass.HTTP_STATUS: (
        "Your endpoint answered, but not with a 2xx status. 401/403: check that signature "
        "verification uses the current signing secret. 404: check the path. 5xx: look at your "
        "server's logs. Any 2xx counts as delivered."
    ),
    ErrorClass.CONNECT_ERROR: (
        "No connection could be made: check that the host name resolves publicly, that the port "
        "is open in your firewall and that a server is listening on it."
    ),
    ErrorClass.UNSAFE_TARGET: (
        "The host resolves to a private or otherwise non-public address. Webhooks are only "
        "delivered to publicly routable addresses; point the URL at a public host."
    ),
    ErrorClass.INTEGRATION_DISABLED: (
        "Nothing was sent: the integration is disabled or has no URL. Enable it on the webhook "
        "settings page."
    ),
    ErrorClass.NO_SIGNING_SECRET: (
        "Nothing was sent: the integration had no active signing secret to sign with. Create "
        "one on the webhook settings page (rotate the secret), then redeliver."
    ),
    ErrorClass.WINDOW_EXPIRED: (
        "Nothing was sent: the 24-hour retry window had ended when this attempt came due, so "
        "the delivery was given up. Fix the endpoint, then redeliver it (a redelivery starts a "
        "new window)."
    ),
    ErrorClass.INTERNAL_ERROR: (
        "Callhook failed while making or recording this attempt; it is on our side, logged, "
        "and the delivery is retried on the normal schedule."
    ),
    ErrorClass.EXPIRED: (
        "Nothing was sent: the event was older than the endpoint's maximum age for its group "
        "(call-control or bulk), so it was dropped as stale and the call's next event was "
        "released. Raise or clear the maximum age on the endpoint, or redeliver it by hand."
    ),
}


def hint(error_class: str | None, *, timeout: float = 2.0) -> str | None:
    """The hint for an attempt's ``error_class`` (None for a success or an unknown class)."""
    if error_class is None:
        return None
    template = _HINTS.get(error_class)
    return template.format(timeout=timeout) if template else None


LABELS: dict[str, str] = {
    ErrorClass.TIMEOUT: "timeout",
    ErrorClass.TLS_ERROR: "TLS error",
    ErrorClass.REDIRECT: "redirect",
    ErrorClass.HTTP_STATUS: "non-2xx status",
    ErrorClass.CONNECT_ERROR: "connection failed",
    ErrorClass.UNSAFE_TARGET: "unsafe target",
    ErrorClass.INTEGRATION_DISABLED: "integration disabled",
    ErrorClass.NO_SIGNING_SECRET: "no signing secret",
    ErrorClass.WINDOW_EXPIRED: "retry window over",
    ErrorClass.INTERNAL_ERROR: "internal error",
    ErrorClass.EXPIRED: "expired (too old)",
}


def label(error_class: str | None) -> str:
    """A short human name for an error class (the class itself when unknown)."""
    if error_class is None:
        return ""
    return LABELS.get(error_class, error_class)
