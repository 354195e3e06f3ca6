"""Accounts: a customer of the telephony provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from callhook.core.ids import RandomBits, new_id
from callhook.errors import NotFound
from callhook.store.tables import accounts
from callhook.store.types import check_length


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    created_at: datetime


def create(conn: Connection, *, name: str, now: datetime, rng: RandomBits) -> Account:
    """A new account named ``name``; ``PayloadInvalid`` if the name is longer than its
    column."""
    check_length(accounts.c.name, name, "name")
    account = Account(id=new_id("acc", now, rng), name=name, created_at=now)
    conn.execute(accounts.insert().values(id=account.id, name=name, created_at=now))
    return account


def get(conn: Connection, account_id: str) -> Account:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound(f"no account {account_id!r}")
    return Account(id=row.id, name=row.name, created_at=row.created_at)


def existing_ids(conn: Connection, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    rows = conn.execute(select(accounts.c.id).where(accounts.c.id.in_(ids)))
    return {r.id for r in rows}


def list_all(conn: Connection) -> list[Account]:
    rows = conn.execute(select(accounts).order_by(accounts.c.created_at))
    return [Account(id=r.id, name=r.name, created_at=r.created_at) for r in rows]
