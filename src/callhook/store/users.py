"""Dashboard users. Passwords are hashed with Argon2id (memory-hard); never stored in clear."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from callhook.core.ids import RandomBits, new_id
from callhook.errors import Conflict, InvalidRequest
from callhook.store.tables import users

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, slots=True)
class User:
    id: str
    account_id: str
    email: str
    created_at: datetime


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if "@" not in value or len(value) > 320 or value.startswith("@") or value.endswith("@"):
        raise InvalidRequest("Enter a valid email address.")
    return value


def create(
    conn: Connection, *, account_id: str, email: str, password: str, now: datetime, rng: RandomBits
) -> User:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    user = User(
        id=new_id("usr", now, rng),
        account_id=account_id,
        email=normalize_email(email),
        created_at=now,
    )
    try:
        with conn.begin_nested():
            conn.execute(
                users.insert().values(
                    id=user.id,
                    account_id=account_id,
                    email=user.email,
                    password_hash=_hasher.hash(password),
                    created_at=now,
                )
            )
    except IntegrityError as exc:
        raise Conflict(f"A user with email {user.email} already exists.") from exc
    return user


def check_password(conn: Connection, email: str, password: str) -> User | None:
    """The user when the password matches, else None (same work either way)."""
    try:
        normalized = normalize_email(email)
    except InvalidRequest:
        normalized = ""
    row = conn.execute(select(users).where(func.lower(users.c.email) == normalized)).first()
    stored = row.password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return User(id=row.id, account_id=row.account_id, email=row.email, created_at=row.created_at)


def get(conn: Connection, user_id: str) -> User | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        return None
    return User(id=row.id, account_id=row.account_id, email=row.email, created_at=row.created_at)


def emails(conn: Connection, account_id: str) -> list[str]:
    """The email addresses of an account's dashboard users, in sign-up order (alert mail
    goes to all of them)."""
    rows = conn.execute(
        select(users.c.email)
        .where(users.c.account_id == account_id)
        .order_by(users.c.created_at, users.c.id)
    )
    return [row[0] for row in rows]


# Verifying against a real hash when the user does not exist keeps timing the same.
_DUMMY_HASH = _hasher.hash("not a real password, only for constant timing")
