"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepts; STARTTLS with a
trustme certificate and AUTH on request. And a server that accepts and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.receiver import Tls, free_port


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """What the server accepted, and the log-ins it saw."""

    mails: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


@contextlib.contextmanager
def smtp_server(
    *,
    port: int | None = None,
    tls: Tls | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[tuple[Mailbox, int]]:
    """Run a server on 127.0.0.1 (on ``port``, or a free one) until the block ends. With
    ``tls`` it offers STARTTLS and requires it; with ``login`` it requires that user name and
    password (over TLS)."""
    box = Mailbox()
    port = port or free_port()

    def authenticate(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            login is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == login
        )
        if ok:
            box.logins.append(data.login.decode())
        return AuthResult(success=ok)

    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs |= {"tls_context": tls.server_context(), "require_starttls": True}
    if login is not None:
        kwargs |= {"authenticator": authenticate, "auth_required": True}
    controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word (an SMTP server hung)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
