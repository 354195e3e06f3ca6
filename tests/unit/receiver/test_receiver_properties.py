"""Hypothesis: bodies round-trip; mutations are rejected; garbage raises only our errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callhook.receiver import MalformedPayload, WebhookVerificationError, explain, parse, verify
from callhook.signing import signature_headers

SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]
TS = 1_736_937_000
OURS = ("X-Webhook-Timestamp", "X-Webhook-Signature")
STANDARD = ("webhook-id", "webhook-timestamp", "webhook-signature")

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    json_values.map(lambda v: json.dumps(v, sort_keys=True, indent=1).encode()),
)
ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


def only(headers: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in names}


@given(body=bodies, msg_id=ids, ts=st.integers(0, 10**11), n=st.integers(1, 2))
def test_any_body_signs_and_verifies(body: bytes, msg_id: str, ts: int, n: int) -> None:
    headers = signature_headers(body=body, msg_id=msg_id, timestamp=ts, secrets=SECRETS[:n])
    for names, scheme in ((OURS, "callhook"), (STANDARD, "standard")):
        assert verify(only(headers, names), body, SECRETS[n - 1], now=ts).scheme == scheme


@given(body=bodies, flip=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_body_mutation_is_rejected(body: bytes, flip: int, bit: int) -> None:
    headers = signature_headers(body=body, msg_id="evt_1", timestamp=TS, secrets=SECRETS[:1])
    if body:
        i = flip % len(body)
        mutated = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1 :]
    else:
        mutated = bytes([1 << bit])
    for names in (OURS, STANDARD, OURS + STANDARD):
        try:
            verify(only(headers, names), mutated, SECRETS, now=TS)
        except WebhookVerificationError:
            continue
        raise AssertionError("a mutated body verified")


@given(body=bodies, delta=st.integers(-(10**6), 10**6).filter(lambda d: d != 0))
def test_any_timestamp_change_is_rejected(body: bytes, delta: int) -> None:
    headers = signature_headers(body=body, msg_id="evt_1", timestamp=TS, secrets=SECRETS[:1])
    forged = dict(headers)
    forged["X-Webhook-Timestamp"] = forged["webhook-timestamp"] = str(TS + delta)
    for names in (OURS, STANDARD, OURS + STANDARD):
        try:  # a huge tolerance, so only the signature can reject it
            verify(only(forged, names), body, SECRETS, now=TS + delta, tolerance=10**7)
        except WebhookVerificationError:
            continue
        raise AssertionError("a changed timestamp verified")


@given(body=bodies, data=st.data())
def test_any_signature_change_is_rejected(body: bytes, data: st.DataObject) -> None:
    headers = signature_headers(body=body, msg_id="evt_1", timestamp=TS, secrets=SECRETS[:1])
    name = data.draw(st.sampled_from(["X-Webhook-Signature", "webhook-signature"]))
    value = headers[name]
    prefix = len("sha256=") if name == "X-Webhook-Signature" else len("v1,")
    i = data.draw(st.integers(prefix, len(value) - 1))
    alphabet = "0123456789abcdef" if prefix == 7 else "ABCDEFabcdef0123456789+/="
    new = data.draw(st.sampled_from(alphabet).filter(lambda c: c != value[i]))
    forged = {name: value[:i] + new + value[i + 1 :]}
    forged.update(only(headers, OURS if prefix == 7 else STANDARD))
    forged[name] = value[:i] + new + value[i + 1 :]
    try:
        verify(forged, body, SECRETS, now=TS)
    except WebhookVerificationError:
        return
    raise AssertionError("a changed signature verified")


header_names = st.sampled_from(
    [*OURS, *STANDARD, "x-webhook-signature", "WEBHOOK-ID", "content-type"]
) | st.text(max_size=20)
header_values = st.text(max_size=120) | st.sampled_from(
    ["", " ", "0", "01", "sha256=", "v1,", "v1,a v2,b", "sha256=" + "a" * 64, str(TS), "-5"]
)


@settings(max_examples=300)
@given(
    headers=st.dictionaries(header_names, header_values, max_size=6),
    body=bodies,
    now=st.integers(0, 10**11) | st.floats(0, 10**11),
)
def test_header_garbage_raises_only_our_errors(
    headers: dict[str, str], body: bytes, now: float
) -> None:
    with contextlib.suppress(WebhookVerificationError):
        verify(headers, body, SECRETS, now=now)
    assert isinstance(explain(headers, body, SECRETS, now=now).verified, bool)


@given(raw=bodies | json_values.map(lambda v: json.dumps({"event": v}).encode()))
def test_parse_raises_only_malformed_payload(raw: bytes) -> None:
    try:
        event: Any = parse(raw)
    except MalformedPayload:
        return
    assert isinstance(event.event, str)
