"""API tokens: ``chk_`` + 43 urlsafe characters, stored only as SHA-256.

Tokens are high-entropy random strings, so a fast hash is the right choice (a slow KDF protects
guessable passwords, not 256-bit random values). The ``chk_`` prefix lets secret scanners find
leaked tokens. A token bound to an account acts for that account only; a platform token
(``account_id`` None) is the telephony core's, for publishing on behalf of any account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select, update

from callhook.core.ids import RandomBits, new_id
from callhook.errors import AuthenticationFailed, InvalidRequest, NotFound
from callhook.store.tables import api_tokens
from callhook.store.types import check_length

TOKEN_PREFIX = "chk_"  # noqa: S105 - a prefix, not a secret
#: Every scope a token may carry. A token has exactly the scopes asked for when it is created:
#: ``endpoints.write`` (add, change, delete endpoints, read their secrets) is never implied.
SCOPES = ("events.write", "webhooks.read", "webhooks.write", "endpoints.write")
# last_used_at is a hint for people, not an audit log: write it at most this often per token.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    account_id: str | None
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(raw: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in raw if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise InvalidRequest(f"unknown scope(s) {', '.join(unknown)}; valid: {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidRequest(f"at least one scope is required; valid: {', '.join(SCOPES)}")
    return scopes


def _from_row(row: object) -> Token:
    r = row._mapping  # type: ignore[attr-defined]
    return Token(
        id=r["id"],
        account_id=r["account_id"],
        name=r["name"],
        prefix=r["prefix"],
        scopes=frozenset(r["scopes"].split(",")),
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
        last_used_at=r["last_used_at"],
    )


# Looked up by hash, as ``authenticate`` does; built once (the API asks on every request).
_BY_HASH = select(api_tokens).where(api_tokens.c.token_hash == bindparam("digest"))


def find(conn: Connection, plaintext: str) -> Token | None:
    """The token ``plaintext`` is (its hash compared in constant time), whatever its state, or
    None when there is none or the string cannot be a token. Reads only."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    row = conn.execute(_BY_HASH, {"digest": digest}).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return _from_row(row)


def create(
    conn: Connection,
    *,
    account_id: str | None,
    scopes: Iterable[str],
    now: datetime,
    rng: RandomBits,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[Token, str]:
    """Create a token; return it and its plaintext (shown once, never stored)."""
    parsed = parse_scopes(scopes)
    check_length(api_tokens.c.name, name, "name")
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expires_at must be in the future")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        id=new_id("tok", now, rng),
        account_id=account_id,
        name=name,
        prefix=plaintext[:12],
        scopes=parsed,
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
    )
    conn.execute(
        api_tokens.insert().values(
            id=token.id,
            account_id=account_id,
            name=name,
            prefix=token.prefix,
            token_hash=hash_token(plaintext),
            scopes=",".join(sorted(parsed)),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return token, plaintext


def authenticate(conn: Connection, plaintext: str, *, now: datetime) -> Token:
    """The active token for this plaintext, or ``AuthenticationFailed``. Records last use."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        raise AuthenticationFailed("Invalid access token.")
    digest = hash_token(plaintext)
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
    # The lookup is by hash, so timing reveals nothing about the token; compare anyway so
    # that the check does not depend on how the database matched.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise AuthenticationFailed("Invalid access token.")
    token = _from_row(row)
    if token.revoked_at is not None:
        raise AuthenticationFailed("Access token has been revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationFailed("Access token has expired.")
    if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_RESOLUTION:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(last_used_at=now))
    return token


def revoke(conn: Connection, token_id: str, *, now: datetime, account_id: str | None) -> None:
    """Revoke a token; with ``account_id`` given, only that account's tokens."""
    query = update(api_tokens).where(api_tokens.c.id == token_id)
    if account_id is not None:
        query = query.where(api_tokens.c.account_id == account_id)
    result = conn.execute(query.where(api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
    if result.rowcount == 0:
        exists = conn.execute(select(api_tokens.c.id).where(api_tokens.c.id == token_id)).first()
        if exists is None:
            raise NotFound(f"no token {token_id!r}")


def list_for(conn: Connection, account_id: str | None) -> list[Token]:
    query = select(api_tokens).order_by(api_tokens.c.created_at.desc())
    if account_id is None:
        query = query.where(api_tokens.c.account_id.is_(None))
    else:
        query = query.where(api_tokens.c.account_id == account_id)
    return [_from_row(r) for r in conn.execute(query)]
