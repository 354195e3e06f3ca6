"""callhook.signing against the committed vectors, the published Standard Webhooks vector and
the third-party libraries (standardwebhooks, svix) both ways."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
import svix.webhooks

from callhook import signing
from callhook.signing import (
    InvalidSignature,
    MalformedHeader,
    MissingHeader,
    StaleTimestamp,
    generate_secret,
    sign_standard,
    signature_headers,
    verify_callhook,
    verify_standard,
)

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "signatures.json").read_text("utf-8")
)["vectors"]
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _ids(v: dict[str, Any]) -> str:
    return str(v["name"])


def test_published_standard_webhooks_vector() -> None:
    assert "v1," + sign_standard(SW_BODY, SW_ID, SW_TS, SW_SECRET) == SW_SIG
    headers = {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TS), "webhook-signature": SW_SIG}
    assert verify_standard(headers, SW_BODY, [SW_SECRET], now=SW_TS) == SW_TS


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_signer_reproduces_vector(vector: dict[str, Any]) -> None:
    body = vector["body"].encode()
    headers = signature_headers(
        body=body,
        msg_id=vector["webhook_id"],
        timestamp=vector["timestamp"],
        secrets=vector["secrets"],
    )
    assert headers == vector["headers"]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_verifier_accepts_vector(vector: dict[str, Any]) -> None:
    body, ts, headers = vector["body"].encode(), vector["timestamp"], vector["headers"]
    for secret in vector["secrets"]:  # during a rotation each secret alone verifies
        assert verify_callhook(headers, body, [secret], now=ts) == ts
        assert verify_standard(headers, body, [secret], now=ts) == ts
    with pytest.raises(InvalidSignature):
        verify_callhook(headers, body + b" ", vector["secrets"], now=ts)
    with pytest.raises(InvalidSignature):
        verify_standard(headers, body + b" ", vector["secrets"], now=ts)


def test_generate_secret_is_whsec_base64_of_32_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(signing.standard_key(secret)) == 32
    assert secret != generate_secret()


@pytest.mark.parametrize(
    ("offset", "ok"), [(-301, False), (-300, True), (0, True), (300, True), (301, False)]
)
def test_timestamp_tolerance_both_directions(offset: int, ok: bool) -> None:
    body, ts = b"{}", 1_700_000_000
    headers = signature_headers(body=body, msg_id="evt_1", timestamp=ts, secrets=[SW_SECRET])
    now = ts - offset  # offset > 0: the timestamp is in the future
    for check in (verify_callhook, verify_standard):
        if ok:
            assert check(headers, body, [SW_SECRET], now=now) == ts
        else:
            with pytest.raises(StaleTimestamp):
                check(headers, body, [SW_SECRET], now=now)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, MissingHeader),
        ({"X-Webhook-Timestamp": "1"}, MissingHeader),
        (
            {"X-Webhook-Timestamp": "01", "X-Webhook-Signature": "sha256=" + "0" * 64},
            MalformedHeader,
        ),
        (
            {"X-Webhook-Timestamp": "-1", "X-Webhook-Signature": "sha256=" + "0" * 64},
            MalformedHeader,
        ),
        ({"X-Webhook-Timestamp": "1", "X-Webhook-Signature": "sha1=" + "0" * 40}, MalformedHeader),
        ({"X-Webhook-Timestamp": "1", "X-Webhook-Signature": "sha256=zz"}, MalformedHeader),
        ({"X-Webhook-Timestamp": "1", "X-Webhook-Signature": ""}, MalformedHeader),
    ],
)
def test_callhook_header_errors(headers: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_callhook(headers, b"{}", ["s"], now=1)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"webhook-timestamp": "1", "webhook-signature": "v1,x"}, MissingHeader),
        (
            {"webhook-id": "", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
            MalformedHeader,
        ),
        (
            {"webhook-id": "a\x00", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
            MalformedHeader,
        ),
        (
            {"webhook-id": "a", "webhook-timestamp": "1", "webhook-signature": "nocomma"},
            MalformedHeader,
        ),
        (
            {"webhook-id": "a", "webhook-timestamp": "1", "webhook-signature": "v2,abc"},
            InvalidSignature,
        ),
        (
            {"webhook-id": "a", "webhook-timestamp": "1", "webhook-signature": "v1,é"},
            InvalidSignature,
        ),
    ],
)
def test_standard_header_errors(headers: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_standard(headers, b"{}", [SW_SECRET], now=1)


def test_header_names_are_case_insensitive() -> None:
    body, ts = b"{}", 1_700_000_000
    headers = signature_headers(body=body, msg_id="evt_1", timestamp=ts, secrets=[SW_SECRET])
    upper = {k.upper(): v for k, v in headers.items()}
    assert verify_callhook(upper, body, [SW_SECRET], now=ts) == ts
    assert verify_standard(upper, body, [SW_SECRET], now=ts) == ts


# --- Interop ---------------------------------------------------------------------------------
NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
TS = int(NOW.timestamp())
BODY = b'{"id":"evt_1","event":"test","data":{"x":"\xc3\xa9"}}'


def test_standardwebhooks_package_verifies_ours() -> None:
    wh = standardwebhooks.Webhook(SW_SECRET)
    # The library checks freshness against its own clock, so sign "now" for it.
    fresh = int(datetime.now(UTC).timestamp())
    headers = signature_headers(body=BODY, msg_id="evt_1", timestamp=fresh, secrets=[SW_SECRET])
    assert wh.verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        wh.verify(BODY + b" ", headers)


def test_svix_package_verifies_ours() -> None:
    fresh = int(datetime.now(UTC).timestamp())
    headers = signature_headers(body=BODY, msg_id="evt_1", timestamp=fresh, secrets=[SW_SECRET])
    svix_headers = {
        "svix-id": headers["webhook-id"],
        "svix-timestamp": headers["webhook-timestamp"],
        "svix-signature": headers["webhook-signature"],
    }
    wh = svix.webhooks.Webhook(SW_SECRET)
    wh.verify(BODY, svix_headers)  # svix 2 returns None and raises on failure
    wh.verify(BODY, headers)  # svix also reads the unbranded webhook-* names
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        wh.verify(BODY + b" ", svix_headers)


def test_ours_verifies_standardwebhooks_package() -> None:
    sig = standardwebhooks.Webhook(SW_SECRET).sign("msg_2", NOW, BODY.decode())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(TS), "webhook-signature": sig}
    assert verify_standard(headers, BODY, [SW_SECRET], now=TS) == TS


def test_ours_verifies_svix_package() -> None:
    sig = svix.webhooks.Webhook(SW_SECRET).sign("msg_3", NOW, BODY.decode())
    headers = {"svix-id": "msg_3", "svix-timestamp": str(TS), "svix-signature": sig}
    standard = {
        "webhook-id": headers["svix-id"],
        "webhook-timestamp": headers["svix-timestamp"],
        "webhook-signature": headers["svix-signature"],
    }
    assert verify_standard(standard, BODY, [SW_SECRET], now=TS) == TS
