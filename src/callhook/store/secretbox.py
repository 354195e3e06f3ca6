"""Encryption at rest for webhook signing secrets.

Signing secrets must be recoverable (we sign with them), so they are encrypted, not hashed:
Fernet (AES-128-CBC + HMAC-SHA256) under a master key from ``CALLHOOK_MASTER_KEY``. For the
single-machine SQLite default, a key file beside the database is created on first use (mode 0600)
so ``make run`` needs no setup; PostgreSQL deployments must set the variable.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url

from callhook.errors import ConfigurationError, StoreError
from callhook.settings import Settings
from callhook.store.db import normalize_url
from callhook.store.files import make_private_dirs, make_private_file, open_private

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

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken as exc:
            raise StoreError(
                "a stored secret cannot be decrypted: is CALLHOOK_MASTER_KEY the key "
                "this database was created with?"
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


def load_secret_box(settings: Settings) -> SecretBox:
    """The box for these settings: the configured key, else the SQLite key file (created once)."""
    if settings.master_key:
        return SecretBox(decode_master_key(settings.master_key))
    path = key_file_for(settings.database_url)
    if path is None:
        raise ConfigurationError(
            "CALLHOOK_MASTER_KEY must be set for this database: the key its signing secrets "
            "were encrypted with (for a database filled by `callhook copy-database`, the "
            "source's key: its CALLHOOK_MASTER_KEY or the key file beside the SQLite "
            "database); a new, empty database can use one from `callhook keys generate`"
        )
    if not path.exists():
        make_private_dirs(path.parent)
        try:
            fd = open_private(path, os.O_WRONLY | os.O_EXCL)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_master_key() + "\n")
    else:
        # 0600 whatever the umask was when it was made (fixed with a warning, or refused).
        make_private_file(path)
    return SecretBox(decode_master_key(path.read_text()))


def key_advice(settings: Settings, target_url: str) -> str:
    """One sentence for whoever runs processes on a database filled from this one: which master
    key they need. Signing secrets are copied encrypted, so only the source's key reads them
    (docs/deployment.md, "Moving from SQLite to PostgreSQL")."""
    source_key = key_file_for(settings.database_url)
    if settings.master_key or source_key is None:
        return (
            "Run the target's processes with the source's CALLHOOK_MASTER_KEY: the signing"
            " secrets were copied encrypted with it."
        )
    target_key = key_file_for(target_url)
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
