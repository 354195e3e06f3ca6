"""The SQLite default's master key file: created once, owner-only, and never committed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from callhook.settings import Settings
from callhook.store.secretbox import key_file_for, load_secret_box

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask, so only the code's own mode decides the file's permissions."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _settings(db: Path) -> Settings:
    return Settings.from_env({"CALLHOOK_DATABASE_URL": f"sqlite:///{db}"})


def test_the_key_file_is_created_owner_only_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    settings = _settings(tmp_path / "callhook.db")
    box = load_secret_box(settings)
    key = key_file_for(settings.database_url)
    assert key == tmp_path / "callhook.key"
    assert _mode(key) == 0o600
    # The same key on the next start: what was encrypted stays readable.
    assert load_secret_box(settings).decrypt(box.encrypt("whsec_x")) == "whsec_x"


def _key_of(db: str) -> bytes:
    """In a child process: the key ``load_secret_box`` uses for ``db`` (sealed text)."""
    box = load_secret_box(_settings(Path(db)))
    return box.encrypt("probe")


def test_processes_starting_together_all_use_one_whole_key(tmp_path: Path) -> None:
    """The first creates the key file, the others use it — and none reads it half-written
    (it is linked into place whole: a reader once met an empty file, "must decode to 32
    bytes")."""
    import multiprocessing

    db = str(tmp_path / "callhook.db")
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        sealed = pool.map(_key_of, [db] * 16)
    box = load_secret_box(_settings(Path(db)))
    assert {box.decrypt(token) for token in sealed} == {"probe"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["callhook.key"]  # no temporary left


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o666, 0o660, 0o707])
def test_a_loose_key_file_is_restricted_on_load(
    tmp_path: Path, open_umask: None, loose: int
) -> None:
    settings = _settings(tmp_path / "callhook.db")
    box = load_secret_box(settings)
    key = tmp_path / "callhook.key"
    key.chmod(loose)
    again = load_secret_box(settings)
    assert _mode(key) == 0o600
    assert again.decrypt(box.encrypt("kept")) == "kept"


def test_files_beside_the_database_are_ignored_by_git(tmp_path: Path) -> None:
    """What a running SQLite platform leaves beside its database never shows as untracked."""
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for name in (
        "callhook.db",
        "callhook.db-wal",
        "callhook.db-shm",
        "callhook.key",
        "callhook.db.write-lock",
        "callhook.demo.json",
        "callhook.db.wake/w-1234.sock",
        "elsewhere.key",
    ):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert status == ["?? .gitignore"]
