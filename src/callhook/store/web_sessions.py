"""Dashboard sign-in sessions and failed sign-in throttling.

Contracts
---------
* A session is identified by a random cookie value (256 bits); only its SHA-256 is stored
  (``web_sessions.id_hash``), so a database leak does not hand out live sessions.
* Each session carries its own CSRF token (synchronizer token), compared in constant time.
* Sessions have an absolute lifetime (``expires_at``); an expired session is treated as absent
  and is deleted when seen. Signing out deletes the row: the cookie stops working at once.
* Failed sign-ins are recorded per key (``email:<address>``, ``ip:<address>``); a key is
  throttled once it has ``limit`` failures within ``THROTTLE_WINDOW``. Counting and checking are
  one atomic step (``reserve_attempt``, in a write transaction that holds a lock per key on
  PostgreSQL and the single writer slot on SQLite): an attempt is recorded as a failure *before*
  the password is checked and forgiven if it succeeds, so however many attempts run at once, at
  most ``limit`` passwords are checked per key and window.
* Expired sessions and failures older than the window are deleted by ``callhook.store.prune``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select

from callhook.store import dialect
from callhook.store.tables import login_failures, web_sessions

#: How long a sign-in lasts, whatever the activity (absolute timeout).
SESSION_LIFETIME = timedelta(hours=12)
#: Failed sign-ins count against their keys for this long.
THROTTLE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def _digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


def create(
    conn: Connection, *, user_id: str, now: datetime, lifetime: timedelta = SESSION_LIFETIME
) -> tuple[str, WebSession]:
    """Start a session; return the cookie value (never stored) and the session."""
    cookie_value = secrets.token_urlsafe(32)
    session = WebSession(
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
    )
    conn.execute(
        web_sessions.insert().values(
            id_hash=_digest(cookie_value),
            user_id=user_id,
            csrf_token=session.csrf_token,
            created_at=now,
            expires_at=session.expires_at,
        )
    )
    return cookie_value, session


def lookup(conn: Connection, cookie_value: str, *, now: datetime) -> WebSession | None:
    """The live session for a cookie value, or None (unknown, signed out or expired)."""
    if not cookie_value or len(cookie_value) > 200:
        return None
    row = conn.execute(
        select(web_sessions).where(web_sessions.c.id_hash == _digest(cookie_value))
    ).first()
    if row is None:
        return None
    if row.expires_at <= now:
        return None
    return WebSession(
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def delete_session(conn: Connection, cookie_value: str) -> None:
    """Sign out: the cookie value no longer opens a session."""
    conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _digest(cookie_value)))


def delete_expired(conn: Connection, *, now: datetime) -> int:
    """Remove sessions past their lifetime; return how many."""
    result = conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    return int(result.rowcount)


def csrf_matches(expected: str, submitted: str | None) -> bool:
    """Whether a submitted form token is the expected CSRF token (constant time)."""
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "replace"))


# --- Throttling ----------------------------------------------------------------------------------
def reserve_attempt(
    conn: Connection, limits: Sequence[tuple[str, int]], *, now: datetime
) -> list[int] | None:
    """Count and record one sign-in attempt atomically, in the caller's write transaction.

    ``limits`` pairs each key with the failures it may have within ``THROTTLE_WINDOW``. When
    every key is below its limit, one failure is recorded under each (returned as row ids, to
    pass to ``forgive`` if the password turns out right); otherwise nothing is recorded and the
    result is None (throttled). Keys are locked (in a fixed order) before they are counted, so
    concurrent attempts on one key are counted one after another.
    """
    keys = [(key[:400], limit) for key, limit in limits]
    dialect.lock_keys(conn, "login_failures", [k for k, _ in keys])
    since = now - THROTTLE_WINDOW
    if any(failures(conn, key, since=since) >= limit for key, limit in keys):
        return None
    ids = []
    for key, _ in keys:
        inserted = login_failures.insert().values(key=key, at=now).returning(login_failures.c.id)
        ids.append(int(conn.execute(inserted).scalar_one()))
    return ids


def forgive(conn: Connection, ids: Sequence[int]) -> None:
    """Remove the failures ``reserve_attempt`` recorded for an attempt that succeeded."""
    if ids:
        conn.execute(delete(login_failures).where(login_failures.c.id.in_(list(ids))))


def record_failure(conn: Connection, keys: list[str], *, now: datetime) -> None:
    """Remember one failed sign-in under every key (email and client address)."""
    conn.execute(login_failures.insert(), [{"key": k[:400], "at": now} for k in keys])


def failures(conn: Connection, key: str, *, since: datetime) -> int:
    """How many failures ``key`` has had since ``since``."""
    count = conn.execute(
        select(func.count())
        .select_from(login_failures)
        .where(login_failures.c.key == key[:400], login_failures.c.at > since)
    ).scalar_one()
    return int(count)


def clear_failures(conn: Connection, key: str) -> None:
    """Forget a key's failures (after a successful sign-in for that email). The key is locked
    first, as ``reserve_attempt`` locks it: two sign-ins deleting the same rows in different
    orders deadlocked on PostgreSQL (``test_signin_race``, once in a fresh-clone CI run)."""
    dialect.lock_keys(conn, "login_failures", [key[:400]])
    conn.execute(delete(login_failures).where(login_failures.c.key == key[:400]))


def prune_failures(conn: Connection, *, before: datetime, limit: int | None = None) -> int:
    """Drop failures older than any throttling window still looks at (at most ``limit``);
    return how many."""
    where = login_failures.c.at <= before
    if limit is not None:
        oldest = select(login_failures.c.id).where(where).order_by(login_failures.c.id).limit(limit)
        where = login_failures.c.id.in_(oldest.scalar_subquery())
    return int(conn.execute(delete(login_failures).where(where)).rowcount)


def prune_sessions(conn: Connection, *, now: datetime, limit: int) -> int:
    """Delete at most ``limit`` sessions past their lifetime; return how many."""
    expired = (
        select(web_sessions.c.id_hash)
        .where(web_sessions.c.expires_at <= now)
        .order_by(web_sessions.c.expires_at)
        .limit(limit)
    )
    result = conn.execute(
        delete(web_sessions).where(web_sessions.c.id_hash.in_(expired.scalar_subquery()))
    )
    return int(result.rowcount)
