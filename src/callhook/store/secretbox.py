"""Encryption at rest for webhook signing secrets.

Signing secrets must be recoverable (we sign with them), so they are encrypted, not hashed:
Fernet (AES-128-CBC + HMAC-SHA256) under a master key from ``CALLHOOK_MASTER_KEY``. For the
single-machine SQLite default, a key file beside the database is created on first use (mode 0600)
so ``make run`` needs no setup; PostgreSQL deployments must set the variable.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from callhook.errors import CallhookError, ConfigurationError, StoreError
from callhook.settings import Settings
from callhook.store.db import Database, normalize_url
from callhook.store.files import make_private_dirs, make_private_file, open_private
from callhook.store.tables import endpoint_secrets

#: The key file beside a SQLite database: read and written by its owner only.
KEY_FILE_MODE = 0o600


class SecretBox:
    """Encrypts and decrypts short strings with one master key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(base64.urlsafe_b64encode(key))
        except (ValueError, binascii.Error) as exc:
            raise ConfigurationError("the master key must be 32 bytes") from exc

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def can_decrypt(self, token: bytes) -> bool:
        """Whether ``token`` was encrypted under this key (and is intact)."""
        try:
            self._fernet.decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken as exc:
            raise StoreError(
                "a stored secret cannot be decrypted: is CALLHOOK_MASTER_KEY the key this"
                " database was created with? (If it is, this secret was stored under another"
                " key: rotate it, e.g. `callhook integration secret ACCOUNT --rotate`.)"
            ) from exc


def decode_master_key(text: str) -> bytes:
    """Decode a urlsafe-base64 master key (32 bytes)."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
    except (ValueError, binascii.Error) as exc:
        raise ConfigurationError("CALLHOOK_MASTER_KEY is not urlsafe base64") from exc
    if len(key) != 32:
        raise ConfigurationError("CALLHOOK_MASTER_KEY must decode to 32 bytes")
    return key


def new_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def key_file_for(database_url: str) -> Path | None:
    """Where the SQLite default keeps its key file: ``<database>.key``."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).with_suffix(".key")


#: How many of the oldest and of the newest signing secrets ``load_secret_box`` tries the key
#: on (each end: a key that reads a database's older secrets and not the last few, or the
#: other way round, is the key of part of it).
KEY_CHECK_SAMPLE = 10


def load_secret_box(settings: Settings, db: Database | None = None) -> SecretBox:
    """The box for these settings: the configured key, else the SQLite key file (created once).

    With ``db``, a key that cannot serve it is refused before anything uses it
    (``ConfigurationError``): one that decrypts none of the ``KEY_CHECK_SAMPLE`` oldest and
    newest signing secrets, and a missing key file for a database that holds secrets or cannot
    be read now (a new key could not read them; none is created). A wrong key used to start a
    process that then delivered nothing and stored new secrets no other process could read (a
    new operator's try, 2026-11-30). A database without Callhook's tables passes (``callhook
    migrate`` comes later); so does one that cannot be reached now with a configured key (the
    process meets the outage as it would; the check is then not made). A key that reads some
    sampled secrets and not others passes: the endpoints whose current secret it cannot read
    are left to workers with the right key (``delivery.claims``)."""
    stored = _sampled_secrets(db) if db is not None else []
    if settings.master_key:
        box = SecretBox(decode_master_key(settings.master_key))
        _check(box, stored or [], "CALLHOOK_MASTER_KEY")
        return box
    path = key_file_for(settings.database_url)
    if path is None:
        raise ConfigurationError(
            "CALLHOOK_MASTER_KEY must be set for this database: the key its signing secrets "
            "were encrypted with (for a database filled by `callhook copy-database`, the "
            "source's key: its CALLHOOK_MASTER_KEY or the key file beside the SQLite "
            "database); a new, empty database can use one from `callhook keys generate`"
        )
    if not path.exists():
        if stored is None or stored:
            why = "holds signing secrets" if stored else "cannot be read now"
            raise ConfigurationError(
                f"no key file at {path} for a database that {why}: put the key its secrets"
                " were encrypted with there, or set CALLHOOK_MASTER_KEY to it (after"
                " `callhook copy-database`, the source's key); a new key could not read them"
            )
        make_private_dirs(path.parent)
        _create_key_file(path)
    else:
        # 0600 whatever the umask was when it was made (fixed with a warning, or refused).
        make_private_file(path)
    box = SecretBox(decode_master_key(path.read_text()))
    _check(box, stored or [], f"the key in {path}")
    return box


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` unless another process does first (then use theirs). The key
    is written to a private temporary file and linked into place, so no process ever reads the
    file half-written (an empty key file read as "must decode to 32 bytes")."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(new_master_key() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # Atomic, and refused if the file is there: another process created it first, so use
        # theirs.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _sampled_secrets(db: Database) -> list[bytes] | None:
    """The oldest and newest ``KEY_CHECK_SAMPLE`` encrypted secrets (by id, the primary key:
    two index reads however many rotations the table holds); ``[]`` for a database without
    Callhook's tables, None when it cannot be read now."""
    try:
        if db.schema_revision() is None:
            return []
        with db.read() as conn:
            ends = [
                select(endpoint_secrets.c.secret_encrypted).order_by(order).limit(KEY_CHECK_SAMPLE)
                for order in (endpoint_secrets.c.id.asc(), endpoint_secrets.c.id.desc())
            ]
            return [token for end in ends for token in conn.execute(end).scalars()]
    except (CallhookError, SQLAlchemyError):
        return None


def _check(box: SecretBox, stored: list[bytes], which: str) -> None:
    if stored and not any(box.can_decrypt(token) for token in stored):
        raise ConfigurationError(
            f"{which} does not decrypt this database's signing secrets: run every process with"
            " the key they were encrypted with (after `callhook copy-database`, the source's"
            " key; docs/deployment.md)"
        )


def key_advice(settings: Settings, source: Database, target_url: str) -> str:
    """One sentence for whoever runs processes on a database filled from ``source``: which
    master key they need. Signing secrets are copied encrypted, so only the key that encrypted
    them reads them (docs/deployment.md, "Moving from SQLite to PostgreSQL"). Which key that is
    is found by decrypting the copied secrets ``load_secret_box`` samples with each candidate:
    the ``CALLHOOK_MASTER_KEY`` this command runs with, then the key file beside a SQLite
    source (read, never created)."""
    tokens = _sampled_secrets(source) or []  # None: the source went away after the copy
    source_key = key_file_for(settings.database_url)
    if tokens:
        if settings.master_key and _opens(tokens, settings.master_key):
            return (
                "Run the target's processes with this CALLHOOK_MASTER_KEY: the signing secrets"
                " were copied encrypted with it."
            )
        if source_key is not None and _opens(tokens, _read(source_key)):
            return _key_file_advice(source_key, key_file_for(target_url))
    return (
        "Run the target's processes with the master key the source's processes use"
        " (CALLHOOK_MASTER_KEY, or the key file beside a SQLite database): the signing secrets"
        " were copied encrypted with it."
    )


def _read(path: Path) -> str:
    """A key file's text; empty when it is missing or unreadable (then it opens nothing)."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def _opens(tokens: list[bytes], key_text: str) -> bool:
    """Whether the key ``key_text`` decrypts any of ``tokens``."""
    if not key_text.strip():
        return False
    try:
        box = SecretBox(decode_master_key(key_text))
    except ConfigurationError:
        return False
    return any(box.can_decrypt(token) for token in tokens)


def _key_file_advice(source_key: Path, target_key: Path | None) -> str:
    if target_key == source_key:
        return (
            f"The signing secrets were copied encrypted with the key in {source_key},"
            " the key file the target uses too."
        )
    where = (
        f"copy {source_key} to {target_key} or set CALLHOOK_MASTER_KEY to its contents"
        if target_key is not None
        else f"set CALLHOOK_MASTER_KEY to the contents of {source_key}"
    )
    return (
        f"The signing secrets were copied encrypted with the key in {source_key}: {where}"
        " for every process on the target."
    )


def _restrict(path: Path) -> None:
    """Owner-only access to a key file made by an older version or copied in loosely."""
    mode = path.stat().st_mode & 0o777
    if mode & ~KEY_FILE_MODE:
        try:
            path.chmod(KEY_FILE_MODE)
        except PermissionError as exc:  # another user's file: say so rather than use it openly
            raise ConfigurationError(
                f"the key file {path} is readable by others (mode {mode:o}) and cannot be "
                "restricted to its owner: chmod 600 it"
            ) from exc
