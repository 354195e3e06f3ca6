"""Verify a delivery's signature under either header scheme. Standard library only.

Callhook signs every delivery twice (see :mod:`callhook.signing`): once in its own scheme
(``X-Webhook-Timestamp`` + ``X-Webhook-Signature``) and once per Standard Webhooks
(``webhook-id`` + ``webhook-timestamp`` + ``webhook-signature``). :func:`verify` accepts a
request when *either* scheme verifies. When both schemes' headers are present ours is checked
first, then Standard Webhooks; when both fail, the error of the first scheme tried is raised
(with a note describing the other failure).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from callhook.errors import InvalidSecret
from callhook.signing import (
    DEFAULT_TOLERANCE,
    HEADER_SIGNATURE,
    HEADER_SW_ID,
    HEADER_SW_SIGNATURE,
    HEADER_SW_TIMESTAMP,
    HEADER_TIMESTAMP,
    SECRET_PREFIX,
    MalformedHeader,
    MissingHeader,
    WebhookVerificationError,
    check_fresh,
    check_secret,
    parse_timestamp,
    verify_callhook,
    verify_standard,
)

Scheme = Literal["callhook", "standard"]
Secrets = str | Sequence[str]
Now = float | datetime | None


@dataclass(frozen=True, slots=True)
class Verification:
    """What :func:`verify` found: the scheme that verified and the signed timestamp."""

    scheme: Scheme
    timestamp: int


def normalize_headers(headers: Mapping[str, str] | Mapping[str, bytes]) -> dict[str, str]:
    """Lower-cased ``name -> value``; bytes decode as Latin-1, as HTTP header bytes do.

    Accepts any mapping a web framework hands out (Starlette ``Headers``, Werkzeug
    ``EnvironHeaders``, Django ``HttpHeaders``, aiohttp ``CIMultiDictProxy``) or a plain dict.
    """
    out: dict[str, str] = {}
    for key, value in headers.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        out[name.lower()] = text
    return out


def secret_list(secret: Secrets) -> list[str]:
    """One secret or several (rotation) as a list, each checked by
    :func:`callhook.signing.check_secret`.

    Raises :class:`~callhook.errors.InvalidSecret` (a ``ValueError``) when there is none or any
    is unusable: empty, not text, ``whsec_`` not followed by base64, or key material shorter
    than 16 bytes. A bad secret is a configuration mistake, not a bad request, so it is never a
    :class:`WebhookVerificationError`; every adapter calls this when it is constructed.
    """
    if isinstance(secret, str):
        secrets = [secret]
    elif isinstance(secret, bytes | bytearray | memoryview) or not isinstance(secret, Iterable):
        raise InvalidSecret(
            f"the secret must be a string or a list of strings, not {type(secret).__name__}"
        )
    else:
        secrets = list(secret)
    if not secrets:
        raise InvalidSecret("at least one secret is needed to verify")
    for number, item in enumerate(secrets, 1):
        try:
            check_secret(item)
        except InvalidSecret as exc:
            if len(secrets) == 1:
                raise
            raise InvalidSecret(f"secret #{number} of {len(secrets)}: {exc.message}") from exc
    return secrets


def has_standard_key(secret: str) -> bool:
    """Whether ``secret`` is ``whsec_`` + base64, the form Standard Webhooks needs."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def now_seconds(now: Now) -> float:
    """``now`` as Unix seconds; ``None`` reads the wall clock (the SDK's one edge)."""
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    return float(now)


def present_schemes(headers: Mapping[str, str]) -> list[Scheme]:
    """Schemes whose signature header is present, ours first. ``headers`` lower-cased."""
    found: list[Scheme] = []
    if HEADER_SIGNATURE.lower() in headers:
        found.append("callhook")
    if HEADER_SW_SIGNATURE in headers:
        found.append("standard")
    return found


def _verify_one(
    scheme: Scheme,
    headers: Mapping[str, str],
    body: bytes,
    secrets: list[str],
    now: float,
    tolerance: float,
) -> int:
    if scheme == "callhook":
        return verify_callhook(headers, body, secrets, now=now, tolerance=tolerance)
    usable = [s for s in secrets if has_standard_key(s)]
    if not usable:
        raise MalformedHeader(
            "webhook-signature needs a whsec_<base64> secret; none of the secrets given is one"
        )
    return verify_standard(headers, body, usable, now=now, tolerance=tolerance)


def verify(
    headers: Mapping[str, str] | Mapping[str, bytes],
    raw_body: bytes,
    secret: Secrets,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Now = None,
) -> Verification:
    """Verify one delivery; return which scheme verified it.

    ``raw_body`` must be the exact bytes received (never re-serialized JSON). ``secret`` is
    one secret or a sequence of them (during a rotation any one may match). Timestamps more
    than ``tolerance`` seconds old *or* in the future are rejected. All comparisons are
    constant-time.

    Raises only :class:`WebhookVerificationError` subclasses for anything wrong with the
    request (``MissingHeader``, ``MalformedHeader``, ``InvalidSignature``, ``StaleTimestamp``),
    :class:`~callhook.errors.InvalidSecret` (a ``ValueError``) for an unusable or weak
    ``secret`` (see :func:`secret_list`), and ``ValueError`` for an unusable ``now``.
    """
    secrets = secret_list(secret)
    current = now_seconds(now)
    lowered = normalize_headers(headers)
    body = bytes(raw_body)
    schemes = present_schemes(lowered)
    if not schemes:
        raise MissingHeader(f"missing both {HEADER_SIGNATURE} and {HEADER_SW_SIGNATURE} headers")
    first: WebhookVerificationError | None = None
    for scheme in schemes:
        try:
            timestamp = _verify_one(scheme, lowered, body, secrets, current, tolerance)
        except WebhookVerificationError as exc:
            if first is None:
                first = exc
            else:
                first.add_note(f"{scheme} scheme also failed: {exc}")
            continue
        return Verification(scheme=scheme, timestamp=timestamp)
    assert first is not None
    raise first


def precheck(
    headers: Mapping[str, str] | Mapping[str, bytes],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Now = None,
) -> None:
    """Cheap checks that need no body: a signature header is present and one scheme's
    timestamp is well-formed and fresh. Adapters call it before reading the body so that an
    unsigned or replayed-long-ago request is refused without buffering its body.

    Passing ``precheck`` proves nothing; :func:`verify` must still run on the body.
    """
    current = now_seconds(now)
    lowered = normalize_headers(headers)
    schemes = present_schemes(lowered)
    if not schemes:
        raise MissingHeader(f"missing both {HEADER_SIGNATURE} and {HEADER_SW_SIGNATURE} headers")
    first: WebhookVerificationError | None = None
    for scheme in schemes:
        name = HEADER_TIMESTAMP if scheme == "callhook" else HEADER_SW_TIMESTAMP
        try:
            raw = lowered.get(name.lower())
            if raw is None:
                raise MissingHeader(f"missing {name} header")
            if scheme == "standard" and HEADER_SW_ID not in lowered:
                raise MissingHeader(f"missing {HEADER_SW_ID} header")
            check_fresh(parse_timestamp(raw, name), current, tolerance)
        except WebhookVerificationError as exc:
            first = first or exc
            continue
        return
    assert first is not None
    raise first
