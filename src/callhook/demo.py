"""The demo of ``make run``: its receiver, and what it remembers between runs.

:class:`DemoReceiver` is a local endpoint that verifies every delivery it gets. It stands in for
a customer's server so a first run shows events arriving end to end. It listens on plain HTTP on
loopback, which only the development setting ``allow_unsafe_targets`` permits.

:class:`DemoState` is what the demo keeps in ``<database>.demo.json`` beside the SQLite file
(owner-only, ignored by git): its API token's id and plaintext — encrypted with the master key,
as signing secrets are, so that every run can print the same token — and the CA bundle it was
last started with (``CALLHOOK_CA_BUNDLE``), so a local HTTPS receiver keeps working after a
restart.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from callhook.errors import StoreError
from callhook.listeners import LIMITS, ListenerLimits, limited_app, read_body
from callhook.signing import WebhookVerificationError, verify_callhook, verify_standard

MAX_SEEN = 10_000

if TYPE_CHECKING:
    from callhook.store.secretbox import SecretBox

#: Owner-only, like the master key file beside it.
STATE_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class DemoState:
    """The demo's memory between runs. Every field may be missing (a first run, a lost file)."""

    token_id: str | None = None
    token_ciphertext: bytes | None = None
    ca_bundle: Path | None = None

    def token(self, box: SecretBox) -> str | None:
        """The token's plaintext, or None when none is kept or it cannot be decrypted (the
        master key changed): the demo then makes a new token."""
        if self.token_ciphertext is None:
            return None
        try:
            return box.decrypt(self.token_ciphertext)
        except StoreError:
            return None

    def with_token(self, token_id: str, plaintext: str, box: SecretBox) -> DemoState:
        return replace(self, token_id=token_id, token_ciphertext=box.encrypt(plaintext))

    def with_ca_bundle(self, ca_bundle: Path | None) -> DemoState:
        return replace(self, ca_bundle=ca_bundle)


def state_path(database_url: str) -> Path:
    """``<database>.demo.json`` beside a SQLite file; ``./callhook.demo.json`` otherwise."""
    from callhook.store.secretbox import key_file_for

    key = key_file_for(database_url)
    return Path("callhook.demo.json") if key is None else key.with_suffix(".demo.json")


def load_state(path: Path) -> DemoState:
    """The state saved at ``path``; an empty state when there is none or it is unreadable
    (it only saves retyping: losing it costs a new token, never data)."""
    try:
        doc: Any = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return DemoState()
    if not isinstance(doc, dict):
        return DemoState()
    token_id, cipher, ca = doc.get("token_id"), doc.get("token"), doc.get("ca_bundle")
    try:
        ciphertext = base64.b64decode(cipher, validate=True) if isinstance(cipher, str) else None
    except binascii.Error:
        ciphertext = None
    return DemoState(
        token_id=token_id if isinstance(token_id, str) else None,
        token_ciphertext=ciphertext,
        ca_bundle=Path(ca) if isinstance(ca, str) and ca else None,
    )


def save_state(path: Path, state: DemoState) -> None:
    """Write ``state`` atomically, readable by its owner only."""
    doc = {
        "token_id": state.token_id,
        "token": (
            base64.b64encode(state.token_ciphertext).decode("ascii")
            if state.token_ciphertext is not None
            else None
        ),
        "ca_bundle": str(state.ca_bundle) if state.ca_bundle is not None else None,
    }
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, STATE_FILE_MODE)
    os.fchmod(fd, STATE_FILE_MODE)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    os.replace(temporary, path)


@dataclass
class DemoReceiver:
    """Counts what arrives; ``secrets`` returns the secrets currently valid for the account."""

    secrets: Callable[[], list[str]]
    on_delivery: Callable[[str, bool, bytes], None] | None = None
    received: int = 0
    rejected: int = 0
    #: The last ``MAX_SEEN`` delivery ids (bounded: the demo runs for as long as you like).
    seen_ids: dict[str, None] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        headers = dict(request.headers)
        now = time.time()
        try:
            known = self.secrets()
            verify_callhook(headers, body, known, now=now)
            verify_standard(headers, body, known, now=now)
        except WebhookVerificationError as exc:
            self.rejected += 1
            if self.on_delivery:
                self.on_delivery(request.headers.get("X-Webhook-Event", "?"), False, body)
            return web.json_response({"error": str(exc)}, status=401)
        self.received += 1
        self.seen_ids[request.headers.get("webhook-id", "")] = None
        while len(self.seen_ids) > MAX_SEEN:
            del self.seen_ids[next(iter(self.seen_ids))]
        if self.on_delivery:
            self.on_delivery(request.headers.get("X-Webhook-Event", "?"), True, body)
        return web.json_response({"received": True})

    def app(self, limits: ListenerLimits = LIMITS) -> web.Application:
        application = limited_app(limits)
        application.router.add_post("/webhook", self.handle)
        return application
