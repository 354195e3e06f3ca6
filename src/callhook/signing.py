"""Signing and verification of webhook deliveries. Pure, standard library only.

Two header schemes are sent on every delivery:

* Ours (spec 001): ``X-Webhook-Timestamp: <unix seconds>`` and
  ``X-Webhook-Signature: sha256=<hex>[,sha256=<hex>...]`` where each hex is
  HMAC-SHA256(key = the whole secret string as UTF-8, msg = ``"<timestamp>.<raw body>"``).
* Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64>[ v1,<base64>...]`` over ``"<id>.<timestamp>.<raw body>"``,
  key = base64-decode of the part after ``whsec_``.

During a secret rotation every valid secret contributes one entry to each list; a verifier
accepts the request when any entry matches any secret it knows.

A secret whose key material is shorter than ``MIN_KEY_BYTES`` is refused (``InvalidSecret``)
wherever a secret enters: signing, verifying, every receiver entry point. ``"whsec_"`` alone —
what ``"whsec_$SECRET"`` becomes when the variable is unset — would otherwise key our scheme with
a string anyone knows and Standard Webhooks with no key at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Final

from callhook.errors import InvalidSecret

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE = 300  # seconds, either direction
#: The least key material a secret may have, in bytes, in either scheme (128 bits: the
#: Standard Webhooks and OpenAI SDKs draw the same line). Callhook issues ``SECRET_BYTES``.
MIN_KEY_BYTES: Final = 16
SECRET_BYTES: Final = 32

HEADER_TIMESTAMP = "X-Webhook-Timestamp"
HEADER_SIGNATURE = "X-Webhook-Signature"
HEADER_SW_ID = "webhook-id"
HEADER_SW_TIMESTAMP = "webhook-timestamp"
HEADER_SW_SIGNATURE = "webhook-signature"


# --- Exceptions (re-exported by callhook.receiver) ------------------------------------------
class WebhookVerificationError(Exception):
    """Base of every verification failure. Nothing else escapes ``verify``."""


class MissingHeader(WebhookVerificationError):
    """A required header is absent."""


class MalformedHeader(WebhookVerificationError):
    """A header is present but cannot be parsed."""


class InvalidSignature(WebhookVerificationError):
    """No signature entry matches any known secret."""


class StaleTimestamp(WebhookVerificationError):
    """The timestamp is too old, or too far in the future."""


# --- Secrets ---------------------------------------------------------------------------------
def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of ``SECRET_BYTES`` (32) random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _base64_key(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_secret(secret: object) -> None:
    """Raise ``InvalidSecret`` unless ``secret`` is safe to sign or verify with.

    The key material is what is left after the public ``whsec_`` prefix. Rules, in order:

    * a non-empty ``str`` that encodes as UTF-8;
    * ``whsec_…`` must be followed by strict base64 (the Standard Webhooks form);
    * when that part is base64 (with or without the prefix), Standard Webhooks keys with the
      decoded bytes: at least ``MIN_KEY_BYTES`` of them;
    * otherwise (a plain string, usable by our scheme only) its UTF-8 bytes: at least
      ``MIN_KEY_BYTES``.

    Messages never contain the secret.
    """
    if not isinstance(secret, str):
        raise InvalidSecret(f"a signing secret must be a string, not {type(secret).__name__}")
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidSecret("the signing secret is not valid text") from exc
    material = secret.removeprefix(SECRET_PREFIX)
    if not material:
        raise InvalidSecret(
            "the signing secret is empty"
            if not secret
            else "the signing secret is 'whsec_' with no key after it (is the variable that "
            "should follow it unset?)"
        )
    key = _base64_key(material)
    if key is None and secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("the signing secret starts with whsec_ but the rest is not base64")
    if key is not None:
        size, what = len(key), "base64-decoded, as Standard Webhooks keys with it"
    else:
        size, what = len(material.encode("utf-8")), "as UTF-8"
    if size < MIN_KEY_BYTES:
        raise InvalidSecret(
            f"the signing secret is too weak: its key is {size} byte{'s' * (size != 1)} "
            f"({what}); at least {MIN_KEY_BYTES} are needed (Callhook issues {SECRET_BYTES})"
        )


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key: base64-decode of the part after ``whsec_``."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedHeader("the secret is not whsec_ followed by base64") from exc


# Both MAC builders check the secret, so no sign or verify path can use a weak one; they are
# cached per secret, so the check runs once per secret, not once per request.
@lru_cache(maxsize=4096)
def _callhook_mac(secret: str) -> hmac.HMAC:
    check_secret(secret)
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


@lru_cache(maxsize=4096)
def _standard_mac(secret: str) -> hmac.HMAC:
    check_secret(secret)
    return hmac.new(standard_key(secret), digestmod=hashlib.sha256)


# --- Signing ---------------------------------------------------------------------------------
def sign_callhook(body: bytes, timestamp: int, secret: str) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed by the whole secret string.

    Raises ``InvalidSecret`` for a weak or malformed secret (see :func:`check_secret`)."""
    mac = _callhook_mac(secret).copy()
    mac.update(b"%d." % timestamp)
    mac.update(body)
    return mac.hexdigest()


def sign_standard(body: bytes, msg_id: str, timestamp: int, secret: str) -> str:
    """Base64 HMAC-SHA256 of ``"<id>.<timestamp>.<body>"`` (Standard Webhooks ``v1``).

    Raises ``InvalidSecret`` for a weak or malformed secret (see :func:`check_secret`)."""
    mac = _standard_mac(secret).copy()
    mac.update(f"{msg_id}.{timestamp}.".encode())
    mac.update(body)
    return base64.b64encode(mac.digest()).decode("ascii")


def signature_headers(
    *, body: bytes, msg_id: str, timestamp: int, secrets: Sequence[str]
) -> dict[str, str]:
    """Headers that sign one attempt, with one entry per valid secret (newest first)."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    ours = ",".join("sha256=" + sign_callhook(body, timestamp, s) for s in secrets)
    standard = " ".join("v1," + sign_standard(body, msg_id, timestamp, s) for s in secrets)
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: ours,
        HEADER_SW_ID: msg_id,
        HEADER_SW_TIMESTAMP: str(timestamp),
        HEADER_SW_SIGNATURE: standard,
    }


# --- Verification ----------------------------------------------------------------------------
def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_timestamp(raw: str, name: str) -> int:
    """A timestamp header's Unix seconds; ``MalformedHeader`` unless canonical decimal."""
    # Canonical decimal only: the signed content uses the integer's canonical form, so a
    # leading zero would let two different header values verify with one signature.
    text = raw.strip(" \t")
    if (
        not text.isascii()
        or not text.isdigit()
        or len(text) > 12
        or (len(text) > 1 and text[0] == "0")
    ):
        raise MalformedHeader(f"{name} must be Unix seconds, got {raw[:40]!r}")
    return int(text)


def check_fresh(timestamp: int, now: float, tolerance: float) -> None:
    """``StaleTimestamp`` unless ``timestamp`` is within ``tolerance`` seconds of ``now``."""
    if timestamp < now - tolerance:
        raise StaleTimestamp(f"timestamp {timestamp} is more than {tolerance:g} s old")
    if timestamp > now + tolerance:
        raise StaleTimestamp(f"timestamp {timestamp} is more than {tolerance:g} s in the future")


def parse_callhook_signatures(raw: str) -> list[str]:
    """The hex digests of an ``X-Webhook-Signature`` value (``sha256=<hex>`` entries)."""
    digests = []
    for entry in raw.split(","):
        scheme, sep, value = entry.strip().partition("=")
        if not sep or scheme != "sha256":
            raise MalformedHeader("X-Webhook-Signature entries must look like sha256=<hex>")
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
            raise MalformedHeader("X-Webhook-Signature digest must be 64 hex characters")
        digests.append(value.lower())
    return digests


def parse_standard_signatures(raw: str) -> list[str]:
    """The base64 ``v1`` signatures of a ``webhook-signature`` value; other versions ignored."""
    found = []
    for entry in raw.split():
        version, sep, value = entry.partition(",")
        if not sep:
            raise MalformedHeader("webhook-signature entries must look like v1,<base64>")
        if version == "v1":
            found.append(value)
    return found


def verify_callhook(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """Verify our scheme; return the timestamp. Raises ``WebhookVerificationError`` subclasses."""
    raw_ts = _header(headers, HEADER_TIMESTAMP)
    raw_sig = _header(headers, HEADER_SIGNATURE)
    if raw_ts is None:
        raise MissingHeader(f"missing {HEADER_TIMESTAMP} header")
    if raw_sig is None:
        raise MissingHeader(f"missing {HEADER_SIGNATURE} header")
    timestamp = parse_timestamp(raw_ts, HEADER_TIMESTAMP)
    digests = parse_callhook_signatures(raw_sig)
    check_fresh(timestamp, now, tolerance)
    for secret in secrets:
        expected = sign_callhook(body, timestamp, secret)
        for digest in digests:
            if hmac.compare_digest(expected, digest):
                return timestamp
    raise InvalidSignature("no X-Webhook-Signature entry matches the secret")


def verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """Verify the Standard Webhooks scheme; return the timestamp."""
    msg_id = _header(headers, HEADER_SW_ID)
    raw_ts = _header(headers, HEADER_SW_TIMESTAMP)
    raw_sig = _header(headers, HEADER_SW_SIGNATURE)
    for name, value in (
        (HEADER_SW_ID, msg_id),
        (HEADER_SW_TIMESTAMP, raw_ts),
        (HEADER_SW_SIGNATURE, raw_sig),
    ):
        if value is None:
            raise MissingHeader(f"missing {name} header")
    assert msg_id is not None
    assert raw_ts is not None
    assert raw_sig is not None
    if not msg_id.strip() or not msg_id.isprintable():
        raise MalformedHeader(f"{HEADER_SW_ID} must be a non-empty printable id")
    try:
        msg_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedHeader(f"{HEADER_SW_ID} is not valid text") from exc
    timestamp = parse_timestamp(raw_ts, HEADER_SW_TIMESTAMP)
    # A base64 signature is ASCII; anything else can never match, so it is dropped here rather
    # than handed to compare_digest (which refuses non-ASCII str).
    candidates = [c for c in parse_standard_signatures(raw_sig) if c.isascii()]
    check_fresh(timestamp, now, tolerance)
    if not candidates:
        raise InvalidSignature("webhook-signature has no v1 entry")
    for secret in secrets:
        expected = sign_standard(body, msg_id, timestamp, secret)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return timestamp
    raise InvalidSignature("no webhook-signature entry matches the secret")
