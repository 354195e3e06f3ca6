"""callhook.receiver.verify: either scheme, rotation, order, errors; and precheck."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callhook.receiver import (
    InvalidSignature,
    MalformedHeader,
    MissingHeader,
    StaleTimestamp,
    Verification,
    WebhookVerificationError,
    verify,
)
from callhook.receiver.verify import precheck
from callhook.signing import signature_headers

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "signatures.json").read_text("utf-8")
)["vectors"]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
TS = 1_736_937_000
BODY = b'{"id":"evt_1","event":"test"}'

OURS = ("X-Webhook-Timestamp", "X-Webhook-Signature")
STANDARD = ("webhook-id", "webhook-timestamp", "webhook-signature")


def signed(secrets: list[str], body: bytes = BODY, ts: int = TS) -> dict[str, str]:
    return signature_headers(body=body, msg_id="evt_1", timestamp=ts, secrets=secrets)


def only(headers: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in names}


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: str(v["name"]))
def test_vectors_verify(vector: dict[str, Any]) -> None:
    body, ts = vector["body"].encode(), vector["timestamp"]
    result = verify(vector["headers"], body, vector["secrets"], now=ts)
    assert result == Verification("callhook", ts)
    assert verify(only(vector["headers"], STANDARD), body, vector["secrets"][-1], now=ts) == (
        Verification("standard", ts)
    )


def test_published_standard_vector_through_receiver() -> None:
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert verify(headers, b'{"test": 2432232314}', SECRET, now=1614265330).scheme == "standard"


def test_either_scheme_alone_verifies() -> None:
    headers = signed([SECRET])
    assert verify(only(headers, OURS), BODY, SECRET, now=TS).scheme == "callhook"
    assert verify(only(headers, STANDARD), BODY, SECRET, now=TS).scheme == "standard"


def test_ours_is_checked_first_then_standard() -> None:
    headers = signed([SECRET])
    assert verify(headers, BODY, SECRET, now=TS).scheme == "callhook"
    broken = dict(headers, **{"X-Webhook-Signature": "sha256=" + "0" * 64})
    assert verify(broken, BODY, SECRET, now=TS).scheme == "standard"


def test_both_failing_raises_first_schemes_error_with_note() -> None:
    headers = signed([OTHER])
    with pytest.raises(InvalidSignature) as info:
        verify(headers, BODY, SECRET, now=TS)
    assert "X-Webhook-Signature" in str(info.value)
    assert any("standard scheme also failed" in n for n in info.value.__notes__)


@pytest.mark.parametrize("order", [[SECRET, OTHER], [OTHER, SECRET]])
def test_rotation_any_secret_any_entry(order: list[str]) -> None:
    assert verify(signed([OTHER]), BODY, order, now=TS).scheme == "callhook"
    assert verify(signed([SECRET, OTHER]), BODY, [order[1]], now=TS).scheme == "callhook"


def test_now_may_be_a_datetime() -> None:
    when = datetime.fromtimestamp(TS, UTC)
    assert verify(signed([SECRET]), BODY, SECRET, now=when).timestamp == TS
    with pytest.raises(ValueError, match="timezone"):
        verify(signed([SECRET]), BODY, SECRET, now=when.replace(tzinfo=None))


@pytest.mark.parametrize("now", [TS - 301, TS + 301])
def test_stale_or_future_rejected(now: int) -> None:
    with pytest.raises(StaleTimestamp):
        verify(signed([SECRET]), BODY, SECRET, now=now)
    assert verify(signed([SECRET]), BODY, SECRET, now=now, tolerance=301).timestamp == TS


def test_no_signature_headers() -> None:
    with pytest.raises(MissingHeader, match="both"):
        verify({"Content-Type": "application/json"}, BODY, SECRET, now=TS)


def test_bytes_values_and_any_case() -> None:
    headers = {k.upper(): v.encode() for k, v in signed([SECRET]).items()}
    assert verify(headers, BODY, SECRET, now=TS).scheme == "callhook"


def test_non_whsec_secret_still_verifies_ours_and_explains_standard() -> None:
    plain = "not-base64, but long enough!"
    headers = signed([SECRET])
    ours = signature_headers(body=BODY, msg_id="evt_1", timestamp=TS, secrets=[SECRET])
    ours = only(ours, OURS)
    from callhook.signing import sign_callhook

    ours["X-Webhook-Signature"] = "sha256=" + sign_callhook(BODY, TS, plain)
    assert verify(ours, BODY, plain, now=TS).scheme == "callhook"
    with pytest.raises(MalformedHeader, match="whsec_"):
        verify(only(headers, STANDARD), BODY, plain, now=TS)


@pytest.mark.parametrize("bad", ["", [], [""], ["\ud800"]])
def test_unusable_secret_is_a_value_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(signed([SECRET]), BODY, bad, now=TS)


def test_precheck_needs_no_body() -> None:
    precheck(signed([SECRET]), now=TS)
    precheck(only(signed([SECRET]), STANDARD), now=TS)
    with pytest.raises(MissingHeader):
        precheck({}, now=TS)
    with pytest.raises(StaleTimestamp):
        precheck(signed([SECRET]), now=TS + 10_000)
    with pytest.raises(MissingHeader):
        precheck({"webhook-signature": "v1,x", "webhook-timestamp": str(TS)}, now=TS)
    with pytest.raises(WebhookVerificationError):
        precheck({"X-Webhook-Signature": "x", "X-Webhook-Timestamp": "soon"}, now=TS)
