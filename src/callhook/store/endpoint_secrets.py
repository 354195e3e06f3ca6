"""Endpoint signing secrets, encrypted at rest (``secretbox``), by endpoint id.

No ownership checks here: ``callhook.store.endpoints`` scopes them by account
(``active_secrets``, ``rotate_secret``) before calling these. An endpoint has one current secret
(``expires_at`` NULL); a rotation gives the others an expiry ``ROTATION_OVERLAP`` away, during
which deliveries are signed with every active secret.
"""

from __future__ import annotations

from collections.abc import Collection, Container
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from callhook.core.ids import RandomBits, new_id
from callhook.errors import StoreError
from callhook.signing import generate_secret
from callhook.store.secretbox import SecretBox
from callhook.store.tables import endpoint_secrets

#: How long a rotated-out secret keeps signing alongside the new one.
ROTATION_OVERLAP = timedelta(hours=24)
#: Secrets that sign at once at most: the current one and the two newest rotated out. Each one
#: adds a signature to every attempt's headers; unbounded, 200 rotations made headers no
#: receiver accepts (over 8 KiB) for a day.
MAX_SIGNING_SECRETS = 3


@dataclass(frozen=True, slots=True)
class SigningSecret:
    """A signing secret in plain text (``whsec_…``); ``expires_at`` None: the current one."""

    id: str
    secret: str
    created_at: datetime
    expires_at: datetime | None


def add(
    conn: Connection,
    endpoint_id: str,
    secret: str,
    *,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
) -> SigningSecret:
    """Store ``secret`` (encrypted) as the endpoint's newest, current secret."""
    row = SigningSecret(id=new_id("sec", now, rng), secret=secret, created_at=now, expires_at=None)
    conn.execute(
        endpoint_secrets.insert().values(
            id=row.id,
            endpoint_id=endpoint_id,
            secret_encrypted=box.encrypt(secret),
            created_at=now,
            expires_at=None,
        )
    )
    return row


def active(
    conn: Connection, endpoint_id: str, *, now: datetime, box: SecretBox
) -> list[SigningSecret]:
    """The endpoint's secrets that sign now (decrypted), the current one first; those ``box``
    cannot decrypt are left out (so the first may be a rotated-out one, ``expires_at`` set,
    when the current one is unreadable here: rotating replaces it)."""
    rows = conn.execute(
        select(endpoint_secrets)
        .where(
            endpoint_secrets.c.endpoint_id == endpoint_id,
            (endpoint_secrets.c.expires_at.is_(None)) | (endpoint_secrets.c.expires_at > now),
        )
        .order_by(
            # The current secret first even when a rotation made its successor in the same instant.
            endpoint_secrets.c.expires_at.is_(None).desc(),
            endpoint_secrets.c.created_at.desc(),
            endpoint_secrets.c.id.desc(),
        )
    )
    out = []
    for r in rows:
        try:
            secret = box.decrypt(r.secret_encrypted)
        except StoreError:
            # Stored under another master key, it signs nothing here: left out, so the secret's
            # page and its rotation stay reachable (a rotation replaces it).
            continue
        out.append(
            SigningSecret(id=r.id, secret=secret, created_at=r.created_at, expires_at=r.expires_at)
        )
    return out


def rotate(
    conn: Connection,
    endpoint_id: str,
    *,
    now: datetime,
    box: SecretBox,
    rng: RandomBits,
    overlap: timedelta = ROTATION_OVERLAP,
) -> SigningSecret:
    """A new current secret; the previous ones keep signing for ``overlap``, the newest
    ``MAX_SIGNING_SECRETS - 1`` of them only: older ones stop signing now."""
    conn.execute(
        update(endpoint_secrets)
        .where(
            endpoint_secrets.c.endpoint_id == endpoint_id,
            (endpoint_secrets.c.expires_at.is_(None))
            | (endpoint_secrets.c.expires_at > now + overlap),
        )
        .values(expires_at=now + overlap)
    )
    still_signing = conn.execute(
        select(endpoint_secrets.c.id)
        .where(endpoint_secrets.c.endpoint_id == endpoint_id, endpoint_secrets.c.expires_at > now)
        .order_by(endpoint_secrets.c.created_at.desc(), endpoint_secrets.c.id.desc())
    ).scalars()
    retired = list(still_signing)[MAX_SIGNING_SECRETS - 1 :]
    if retired:
        conn.execute(
            update(endpoint_secrets)
            .where(endpoint_secrets.c.id.in_(retired))
            .values(expires_at=now)
        )
    return add(conn, endpoint_id, generate_secret(), now=now, box=box, rng=rng)


def unreadable_current(
    conn: Connection, endpoint_ids: Collection[str], box: SecretBox, known: Container[str]
) -> set[str]:
    """Those of these endpoints whose current secret ``box`` cannot decrypt (stored under
    another master key), for a worker to leave them before it spends anything on them
    (``delivery.claims``). One indexed read; secrets whose id is in ``known`` (already
    decrypted) are not tried again."""
    if not endpoint_ids:
        return set()
    rows = conn.execute(
        select(
            endpoint_secrets.c.endpoint_id,
            endpoint_secrets.c.id,
            endpoint_secrets.c.secret_encrypted,
        ).where(
            endpoint_secrets.c.endpoint_id.in_(list(endpoint_ids)),
            endpoint_secrets.c.expires_at.is_(None),
        )
    )
    return {
        endpoint_id
        for endpoint_id, secret_id, token in rows
        if secret_id not in known and not box.can_decrypt(token)
    }
