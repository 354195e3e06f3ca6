"""callhook.receiver.explain names the cause of a failure."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from callhook.receiver import explain, verify
from callhook.signing import signature_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
TS = 1_736_937_000
BODY = b'{"id":"evt_1","event":"test"}'


def headers(secret: str = SECRET) -> dict[str, str]:
    return signature_headers(body=BODY, msg_id="evt_1", timestamp=TS, secrets=[secret])


def messages(result: object) -> str:
    return "\n".join(f.message for f in result.findings)  # type: ignore[attr-defined]


def test_good_capture() -> None:
    result = explain(headers(), BODY, SECRET, now=TS)
    assert result.verified
    assert result.scheme == "callhook"
    assert "entry 1 matches secret #1 over the body as given" in messages(result)
    assert not [f for f in result.findings if f.level == "problem"]


def test_trailing_newline_is_named() -> None:
    result = explain(headers(), BODY + b"\n", SECRET, now=TS)
    assert not result.verified
    assert "without its trailing newline" in messages(result)


def test_wrong_secret_and_stale() -> None:
    result = explain(headers(OTHER), BODY, SECRET, now=TS + 3600)
    assert not result.verified
    text = messages(result)
    assert "3600 s ago" in text
    assert "no X-Webhook-Signature entry was signed with any of the 1 secret(s)" in text
    assert result.error is not None
    assert result.error.startswith("StaleTimestamp")


def test_wrong_key_derivations_are_named() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    ours = hmac.new(key, f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    std = hmac.new(SECRET.encode(), f"evt_1.{TS}.".encode() + BODY, hashlib.sha256).digest()
    captured = dict(headers())
    captured["X-Webhook-Signature"] = "sha256=" + ours
    captured["webhook-signature"] = "v1," + base64.b64encode(std).decode()
    text = messages(explain(captured, BODY, SECRET, now=TS))
    assert "the signer used secret #1 base64-decoded" in text
    assert "the signer used secret #1 as a raw string" in text


def _wrong_keys() -> dict[str, str]:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    ours = hmac.new(key, f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    std = hmac.new(SECRET.encode(), f"evt_1.{TS}.".encode() + BODY, hashlib.sha256).digest()
    return {
        **headers(),
        "X-Webhook-Signature": "sha256=" + ours,
        "webhook-signature": "v1," + base64.b64encode(std).decode(),
    }


@pytest.mark.parametrize(
    ("captured", "body", "now"),
    [
        (headers(), BODY, TS),
        (headers(), BODY + b"\n", TS),
        (headers(), BODY + b"\r\n", TS),
        (headers(OTHER), BODY, TS),
        (headers(), BODY, TS + 3600),
        (headers(), BODY, TS - 3600),
        (_wrong_keys(), BODY, TS),
        ({**headers(), "X-Webhook-Signature": "sha256=zz"}, BODY, TS),
        ({"webhook-signature": "v1,x", "webhook-id": "a", "webhook-timestamp": "1"}, BODY, 1),
    ],
)
def test_a_problem_never_reads_as_a_match(captured: dict[str, str], body: bytes, now: int) -> None:
    """`callhook verify` prints ✗ beside every problem: none may read as a match."""
    for finding in explain(captured, body, SECRET, now=now).findings:
        if finding.level == "problem":
            assert "match" not in finding.message


def test_verdict_agrees_with_verify() -> None:
    cases = [
        (headers(), BODY, TS),
        (headers(), BODY + b"x", TS),
        (headers(), BODY, TS + 301),
        ({}, BODY, TS),
        ({"webhook-signature": "v1,x", "webhook-id": "a", "webhook-timestamp": "1"}, BODY, 1),
    ]
    for hdrs, body, now in cases:
        try:
            verify(hdrs, body, SECRET, now=now)
            ok = True
        except Exception:
            ok = False
        assert explain(hdrs, body, SECRET, now=now).verified is ok
