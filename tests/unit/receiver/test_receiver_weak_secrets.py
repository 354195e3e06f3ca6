"""Weak or malformed signing secrets are refused on every entry point, in both schemes, when
the verifier (or signer) is set up — never accepted, never answered as a 401 per request.

Issue 11, class 1: ``verify(headers, body, "whsec_")`` (an unset ``$SECRET``) accepted requests
signed with a key anyone can compute; ``"whsec_AA=="`` (a 1-byte key) did the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from callhook import signing
from callhook.cli.devtools_listen import Listener
from callhook.errors import ConfigurationError, InvalidSecret
from callhook.receiver import InvalidSecret as ExportedInvalidSecret
from callhook.receiver import explain, verify
from callhook.receiver.aiohttp import webhook_handler
from callhook.receiver.django import webhook_view
from callhook.receiver.fastapi import WebhookVerifier
from callhook.receiver.flask import webhook
from callhook.receiver.gate import Gate

GOOD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24-byte key
TS = 1_736_937_000
BODY = b'{"id":"evt_1","event":"test"}'


def b64(n: int, *, prefix: str = "whsec_") -> str:
    return prefix + base64.b64encode(bytes(range(1, n + 1))).decode()


#: (id, secret): every one must be refused. The first two are the issue's examples.
WEAK: list[tuple[str, Any]] = [
    ("unset variable", "whsec_"),
    ("1-byte key", "whsec_AA=="),
    ("empty", ""),
    ("3-byte key", "whsec_AAAA"),
    ("15-byte key", b64(15)),
    ("15-byte key, no prefix", b64(15, prefix="")),
    ("16 base64 characters, no prefix (12 bytes)", "abcdefghijklmnop"),
    ("15-byte plain string", "p" * 14 + "!"),
    ("plain string of 15 UTF-8 bytes", "é" * 7 + "!"),
    ("whsec_ then not base64", "whsec_" + "not base64 at all, though long"),
    ("whsec_ then bad padding", "whsec_" + "A" * 31),
    ("whsec_ then a space", "whsec_ "),
    ("whsec_ twice", "whsec_whsec_"),
    ("padding only", "whsec_===="),
    ("lone surrogate", "whsec_\ud800" + "A" * 40),
    ("bytes", GOOD.encode()),
    ("None", None),
]
WEAK_IDS = [name for name, _ in WEAK]
WEAK_VALUES = [value for _, value in WEAK]

#: Accepted: 16 bytes is the line, both prefixed and not, base64 or plain text.
STRONG = [GOOD, b64(16), b64(16, prefix=""), b64(64), signing.generate_secret(), "p" * 15 + "!"]


# --- the issue's example: a request forged with the key an unset variable gives -----------------
def forged(key_ours: bytes, key_standard: bytes) -> dict[str, str]:
    """Both schemes' headers computed with plain hmac, independently of callhook.signing."""
    ours = hmac.new(key_ours, b"%d." % TS + BODY, hashlib.sha256).hexdigest()
    std = hmac.new(key_standard, f"evt_1.{TS}.".encode() + BODY, hashlib.sha256).digest()
    return {
        "X-Webhook-Timestamp": str(TS),
        "X-Webhook-Signature": f"sha256={ours}",
        "webhook-id": "evt_1",
        "webhook-timestamp": str(TS),
        "webhook-signature": "v1," + base64.b64encode(std).decode(),
    }


@pytest.mark.parametrize(
    ("secret", "key_ours", "key_standard"),
    [("whsec_", b"whsec_", b""), ("whsec_AA==", b"whsec_AA==", b"\x00")],
)
@pytest.mark.parametrize(
    "scheme", [("X-Webhook-Timestamp", "X-Webhook-Signature"), ("webhook-id", "webhook-timestamp")]
)
def test_a_request_forged_with_a_computable_key_is_not_accepted(
    secret: str, key_ours: bytes, key_standard: bytes, scheme: tuple[str, str]
) -> None:
    headers = forged(key_ours, key_standard)
    if scheme[0] == "webhook-id":
        headers = {k: v for k, v in headers.items() if not k.startswith("X-")}
    else:
        headers = {k: v for k, v in headers.items() if k.startswith("X-")}
    with pytest.raises(InvalidSecret, match=r"whsec_|too weak"):
        verify(headers, BODY, secret, now=TS)


# --- every entry point, every weak secret -------------------------------------------------------
def _sdk_verify(secret: Any) -> object:
    return verify(forged(b"x", b"x"), BODY, secret, now=TS)


#: Each entry point, called with the secret alone; each must raise before looking at a request.
ENTRY_POINTS: dict[str, Callable[[Any], object]] = {
    "verify": _sdk_verify,
    "explain": lambda s: explain(forged(b"x", b"x"), BODY, s, now=TS),
    "Gate": lambda s: Gate(s),
    "fastapi.WebhookVerifier": lambda s: WebhookVerifier(s),
    "flask.webhook": lambda s: webhook(s),
    "django.webhook_view": lambda s: webhook_view(s),
    "aiohttp.webhook_handler": lambda s: webhook_handler(s, _on_event),
    "cli listen": lambda s: Listener([s], console=Console(file=None)),
    "signature_headers": lambda s: signing.signature_headers(
        body=BODY, msg_id="evt_1", timestamp=TS, secrets=[s]
    ),
    "sign_callhook": lambda s: signing.sign_callhook(BODY, TS, s),
    "sign_standard": lambda s: signing.sign_standard(BODY, "evt_1", TS, s),
    "verify_callhook": lambda s: signing.verify_callhook(forged(b"x", b"x"), BODY, [s], now=TS),
    "verify_standard": lambda s: signing.verify_standard(forged(b"x", b"x"), BODY, [s], now=TS),
}


async def _on_event(_event: object) -> None:
    return None


@pytest.mark.parametrize("entry", list(ENTRY_POINTS), ids=str)
@pytest.mark.parametrize("secret", WEAK_VALUES, ids=WEAK_IDS)
def test_every_entry_point_refuses_a_weak_secret(entry: str, secret: Any) -> None:
    with pytest.raises(InvalidSecret) as info:
        ENTRY_POINTS[entry](secret)
    # One exception tree: a configuration error (and a ValueError, as the SDK always raised).
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, ValueError)
    assert ExportedInvalidSecret is InvalidSecret  # catchable from callhook.receiver
    # The message never repeats the secret.
    material = secret.removeprefix("whsec_") if isinstance(secret, str) else ""
    if len(material) >= 8:
        assert material not in str(info.value)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS), ids=str)
@pytest.mark.parametrize("secret", STRONG)
def test_every_entry_point_accepts_a_strong_secret(entry: str, secret: str) -> None:
    try:
        ENTRY_POINTS[entry](secret)
    except InvalidSecret as exc:  # pragma: no cover - the failure being tested for
        raise AssertionError(f"{entry} refused a strong secret: {exc}") from exc
    except signing.WebhookVerificationError:
        pass  # the forged request itself is rejected; the secret was accepted


@pytest.mark.parametrize("position", [0, 1])
@pytest.mark.parametrize("weak", ["whsec_", "whsec_AA=="])
def test_one_weak_secret_in_a_rotation_refuses_the_whole_list(position: int, weak: str) -> None:
    secrets = [GOOD, GOOD]
    secrets[position] = weak
    with pytest.raises(InvalidSecret, match=f"secret #{position + 1} of 2"):
        Gate(secrets)
    headers = signing.signature_headers(body=BODY, msg_id="e", timestamp=TS, secrets=[GOOD])
    with pytest.raises(InvalidSecret):
        verify(headers, BODY, secrets, now=TS)


def test_an_empty_rotation_list_is_refused() -> None:
    with pytest.raises(InvalidSecret, match="at least one secret"):
        Gate([])


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_", "'whsec_' with no key after it"),
        ("whsec_AA==", "its key is 1 byte (base64-decoded"),
        ("", "empty"),
        ("whsec_not base64", "starts with whsec_ but the rest is not base64"),
        ("p" * 15, "its key is 15 bytes (as UTF-8)"),
    ],
)
def test_the_message_says_what_is_wrong(secret: str, message: str) -> None:
    with pytest.raises(InvalidSecret) as info:
        signing.check_secret(secret)
    assert message in str(info.value)


# --- properties -------------------------------------------------------------------------------
def _oracle(secret: str) -> bool:
    """Independent statement of the rule: key material of at least 16 bytes in every scheme
    that would use the secret."""
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        return False
    prefixed = secret.startswith("whsec_")
    rest = secret[6:] if prefixed else secret
    try:
        key: bytes | None = base64.b64decode(rest, validate=True)
    except ValueError:
        key = None
    if key is None:
        return not prefixed and len(rest.encode("utf-8")) >= 16
    return len(key) >= 16


OURS = ("X-Webhook-Timestamp", "X-Webhook-Signature")
STANDARD = ("webhook-id", "webhook-timestamp", "webhook-signature")


@given(n=st.integers(0, 64), prefix=st.sampled_from(["whsec_", ""]))
def test_a_base64_key_is_accepted_exactly_from_16_bytes(n: int, prefix: str) -> None:
    secret = prefix + base64.b64encode(bytes(range(n))).decode()
    if n < 16:
        signed_by_good = signing.signature_headers(
            body=BODY, msg_id="e", timestamp=TS, secrets=[GOOD]
        )
        with pytest.raises(InvalidSecret):
            verify(signed_by_good, BODY, secret, now=TS)
        with pytest.raises(InvalidSecret):
            Gate(secret)
        return
    Gate(secret)
    own = signing.signature_headers(body=BODY, msg_id="e", timestamp=TS, secrets=[secret])
    for names, scheme in ((OURS, "callhook"), (STANDARD, "standard")):
        alone = {k: v for k, v in own.items() if k in names}
        assert verify(alone, BODY, secret, now=TS).scheme == scheme


@given(
    secret=st.one_of(
        st.text(max_size=40),
        st.text(max_size=40).map(lambda t: "whsec_" + t),
        st.binary(max_size=30).map(lambda b: "whsec_" + base64.b64encode(b).decode()),
        st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()),
    )
)
def test_any_secret_is_accepted_exactly_when_its_key_material_is_16_bytes(secret: str) -> None:
    if _oracle(secret):
        signing.check_secret(secret)
        Gate(secret)
    else:
        with pytest.raises(InvalidSecret):
            Gate(secret)
        with pytest.raises(InvalidSecret):
            signing.sign_callhook(BODY, TS, secret)


def test_the_platform_issues_only_strong_secrets() -> None:
    seen = set()
    for _ in range(2000):
        secret = signing.generate_secret()
        signing.check_secret(secret)
        assert len(signing.standard_key(secret)) == signing.SECRET_BYTES == 32
        seen.add(secret)
    assert len(seen) == 2000
    assert signing.SECRET_BYTES >= signing.MIN_KEY_BYTES
