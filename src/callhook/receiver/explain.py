"""Explain why a captured request does or does not verify. Standard library only.

:func:`explain` runs the same checks as :func:`callhook.receiver.verify` but, instead of
stopping at the first failure, reports every step for both schemes, and tries the usual
mistakes (a trailing newline added when the body was saved, the wrong key derivation, the wrong
secret, a stale capture) so that the report names the cause. ``explain(...).verified`` always
agrees with whether ``verify`` succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from callhook.receiver.verify import (
    Now,
    Scheme,
    Secrets,
    has_standard_key,
    normalize_headers,
    now_seconds,
    secret_list,
    verify,
)
from callhook.signing import (
    DEFAULT_TOLERANCE,
    HEADER_SIGNATURE,
    HEADER_SW_ID,
    HEADER_SW_SIGNATURE,
    HEADER_SW_TIMESTAMP,
    HEADER_TIMESTAMP,
    WebhookVerificationError,
    parse_callhook_signatures,
    parse_standard_signatures,
    parse_timestamp,
    sign_callhook,
    sign_standard,
)

Level = Literal["ok", "info", "problem"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of an explanation."""

    level: Level
    message: str


@dataclass(slots=True)
class Explanation:
    """The verdict and the steps that led to it."""

    verified: bool
    scheme: Scheme | None
    error: str | None
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, message: str) -> None:
        self.findings.append(Finding(level, message))


def _age(timestamp: int, now: float, tolerance: float) -> tuple[bool, str]:
    delta = now - timestamp
    fresh = -tolerance <= delta <= tolerance
    when = f"{delta:.0f} s ago" if delta >= 0 else f"{-delta:.0f} s in the future"
    return fresh, f"timestamp {timestamp} is {when} (tolerance ±{tolerance:g} s)"


def _raw_key_standard(body: bytes, msg_id: str, ts: int, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _decoded_key_callhook(body: bytes, ts: int, secret: str) -> str | None:
    if not has_standard_key(secret):
        return None
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return hmac.new(key, b"%d." % ts + body, hashlib.sha256).hexdigest()


def _match(entry: str, secret: int, label: str, as_given: bool) -> tuple[Level, str]:
    """The finding for a signature entry that verified over ``label``: a success over the body
    as given, else a problem worded as one (a ✗ never sits beside "matches")."""
    if as_given:
        return "ok", f"{entry} matches secret #{secret} over {label}"
    return (
        "problem",
        f"the body as given does not verify: {entry} was signed (secret #{secret}) over {label}; "
        "verify the exact bytes received",
    )


def _bodies(body: bytes) -> list[tuple[str, bytes]]:
    """The body plus the variants a capture commonly adds, labelled."""
    variants = [("the body as given", body)]
    stripped = body.rstrip(b"\r\n")
    if stripped != body:
        variants.append(("the body without its trailing newline", stripped))
    return variants


def _explain_callhook(
    out: Explanation,
    headers: Mapping[str, str],
    body: bytes,
    secrets: list[str],
    now: float,
    tolerance: float,
) -> None:
    raw_ts, raw_sig = headers.get(HEADER_TIMESTAMP.lower()), headers.get(HEADER_SIGNATURE.lower())
    if raw_sig is None:
        out.add("info", f"{HEADER_SIGNATURE} absent: Callhook's own scheme not checked")
        return
    if raw_ts is None:
        out.add("problem", f"{HEADER_SIGNATURE} present but {HEADER_TIMESTAMP} missing")
        return
    try:
        ts = parse_timestamp(raw_ts, HEADER_TIMESTAMP)
        digests = parse_callhook_signatures(raw_sig)
    except WebhookVerificationError as exc:
        out.add("problem", f"{exc}")
        return
    fresh, age = _age(ts, now, tolerance)
    out.add("ok" if fresh else "problem", f"{HEADER_TIMESTAMP}: {age}")
    out.add(
        "info", f"{HEADER_SIGNATURE} has {len(digests)} entr{'y' if len(digests) == 1 else 'ies'}"
    )
    for label, candidate in _bodies(body):
        for i, secret in enumerate(secrets, 1):
            expected = sign_callhook(candidate, ts, secret)
            for j, digest in enumerate(digests, 1):
                if hmac.compare_digest(expected, digest):
                    out.add(*_match(f"entry {j}", i, label, candidate is body))
                    return
    out.add(
        "problem",
        f"no {HEADER_SIGNATURE} entry was signed with any of the {len(secrets)} secret(s)",
    )
    for i, secret in enumerate(secrets, 1):
        wrong = _decoded_key_callhook(body, ts, secret)
        if wrong is not None and wrong in digests:
            out.add(
                "problem",
                f"wrong key: the signer used secret #{i} base64-decoded, but "
                f"{HEADER_SIGNATURE} keys the HMAC with the whole whsec_… string as UTF-8",
            )


def _explain_standard(
    out: Explanation,
    headers: Mapping[str, str],
    body: bytes,
    secrets: list[str],
    now: float,
    tolerance: float,
) -> None:
    raw_sig = headers.get(HEADER_SW_SIGNATURE)
    if raw_sig is None:
        out.add("info", f"{HEADER_SW_SIGNATURE} absent: Standard Webhooks scheme not checked")
        return
    msg_id, raw_ts = headers.get(HEADER_SW_ID), headers.get(HEADER_SW_TIMESTAMP)
    for name, value in ((HEADER_SW_ID, msg_id), (HEADER_SW_TIMESTAMP, raw_ts)):
        if value is None:
            out.add("problem", f"{HEADER_SW_SIGNATURE} present but {name} missing")
            return
    assert msg_id is not None
    assert raw_ts is not None
    try:
        ts = parse_timestamp(raw_ts, HEADER_SW_TIMESTAMP)
        found = parse_standard_signatures(raw_sig)
    except WebhookVerificationError as exc:
        out.add("problem", f"{exc}")
        return
    fresh, age = _age(ts, now, tolerance)
    out.add("ok" if fresh else "problem", f"{HEADER_SW_TIMESTAMP}: {age}")
    usable = [(i, s) for i, s in enumerate(secrets, 1) if has_standard_key(s)]
    if not usable:
        out.add("problem", "no secret is whsec_<base64>, which Standard Webhooks needs as its key")
        return
    if not found:
        out.add("problem", f"{HEADER_SW_SIGNATURE} has no v1 entry")
        return
    out.add(
        "info", f"{HEADER_SW_SIGNATURE} has {len(found)} v1 entr{'y' if len(found) == 1 else 'ies'}"
    )
    if not msg_id.isprintable():
        out.add("problem", f"{HEADER_SW_ID} is not printable text")
        return
    for label, candidate in _bodies(body):
        for i, secret in usable:
            expected = sign_standard(candidate, msg_id, ts, secret)
            for j, sig in enumerate(found, 1):
                if hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
                    out.add(*_match(f"v1 entry {j}", i, label, candidate is body))
                    return
    out.add("problem", f"no {HEADER_SW_SIGNATURE} entry was signed with any of the secret(s)")
    for i, secret in enumerate(secrets, 1):
        if _raw_key_standard(body, msg_id, ts, secret) in found:
            out.add(
                "problem",
                f"wrong key: the signer used secret #{i} as a raw string, but Standard Webhooks "
                "keys the HMAC with the base64-decoded part after whsec_",
            )


def explain(
    headers: Mapping[str, str] | Mapping[str, bytes],
    raw_body: bytes,
    secret: Secrets,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Now = None,
) -> Explanation:
    """Every check, both schemes, plus diagnoses of the common mistakes."""
    secrets = secret_list(secret)
    current = now_seconds(now)
    lowered = normalize_headers(headers)
    body = bytes(raw_body)
    try:
        result = verify(lowered, body, secrets, tolerance=tolerance, now=current)
    except WebhookVerificationError as exc:
        out = Explanation(verified=False, scheme=None, error=f"{type(exc).__name__}: {exc}")
    else:
        out = Explanation(verified=True, scheme=result.scheme, error=None)
    out.add("info", f"body: {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:16]}…")
    try:
        json.loads(body)
    except ValueError:
        out.add("info", "body is not JSON (a delivery body always is)")
    _explain_callhook(out, lowered, body, secrets, current, tolerance)
    _explain_standard(out, lowered, body, secrets, current, tolerance)
    if not out.verified and not any(f.level == "problem" for f in out.findings):
        out.add("problem", out.error or "no signature header present")
    return out
