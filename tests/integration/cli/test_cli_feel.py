"""The command line as a new operator meets it: fast help, whole values, clear words, scriptable.

Over a real SQLite file; processes where the thing under test is the process (start-up, what a
long-running command prints first).
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.store.db import SCHEMA_REVISION as HEAD
from callhook.store.db import Database
from callhook.store.migrate import downgrade

CALLHOOK = str(Path(sys.executable).parent / "callhook")
#: RFC 3339, UTC, milliseconds, ``Z``: the one format of times in JSON (CLI and API ``data``).
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
#: What a help or a text command must not pull in (measured by ``python -m bench.cli_startup``).
HEAVY = (
    "sqlalchemy",
    "alembic",
    "pydantic",
    "aiohttp",
    "fastapi",
    "starlette",
    "uvicorn",
    "rich",
    "orjson",
    "cryptography",
    "argon2",
    "psycopg",
)

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), env=env, input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def run_json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    return orjson.loads(run(env, *args, "--json", stdin=stdin))


# --- start-up and help -------------------------------------------------------------------------
def _modules_loaded(*argv: str) -> set[str]:
    """Top-level packages imported by running ``callhook ARGV`` (in a fresh interpreter)."""
    script = (
        "import sys\n"
        f"sys.argv = ['callhook', *{list(argv)!r}]\n"
        "from callhook.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stderr.split())


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--help"], set()),
        ([], set()),
        # Typer itself builds a command's parameters with pydantic (its coercion layer).
        (["tokens", "--help"], {"pydantic"}),
        (["tokens", "create", "--help"], {"pydantic"}),
    ],
)
def test_help_imports_nothing_heavy(argv: list[str], allowed: set[str]) -> None:
    loaded = _modules_loaded(*argv)
    assert "callhook" in loaded
    assert sorted(loaded.intersection(HEAVY) - allowed) == []


def _all_help_pages() -> list[list[str]]:
    import typer.main

    pages: list[list[str]] = [[]]
    root = typer.main.get_command(app)
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        pages.append([name])
        for sub in getattr(command, "commands", {}):
            pages.append([name, sub])
    return pages


@pytest.mark.parametrize("page", _all_help_pages(), ids=lambda p: " ".join(p) or "callhook")
def test_help_reads_whole(page: list[str]) -> None:
    """No `<bool>` after flags, no summary cut with "..." at 80 columns."""
    out = run({"COLUMNS": "80"}, *page, "--help")
    assert "Usage: callhook" in out
    assert "<bool>" not in out
    summaries = [line for line in out.splitlines() if line.startswith("  ") and "Usage" not in line]
    assert not [line for line in summaries if line.rstrip().endswith("...")], out


# --- whole values when not a terminal ----------------------------------------------------------
def test_tables_print_whole_values_when_piped(env: dict[str, str]) -> None:
    run(env, "migrate")
    account = run_json(env, "accounts", "create", "Acme Telecom Incorporated of Springfield")
    token = run_json(env, "tokens", "create", "--scopes", "events.write,webhooks.read")
    # CliRunner's stdout is not a terminal, as with `| less` or `> file`.
    listed = run(env, "tokens", "list")
    assert token["id"] in listed
    assert token["prefix"] + "…" in listed
    assert "events.write,webhooks.read" in listed
    accounts = run(env, "accounts", "list")
    assert account["id"] in accounts
    assert "Acme Telecom Incorporated of Springfield" in accounts


def test_emit_prints_one_whole_line(env: dict[str, str]) -> None:
    run(env, "migrate")
    account = run_json(env, "accounts", "create", "Acme")["id"]
    out = run(env, "emit", "incoming_call_start", "--account", account)
    assert len(out.splitlines()) == 1
    assert re.fullmatch(r"Recorded evt_\w+ but not delivered: no_webhook_url\n", out)


# --- scriptable --------------------------------------------------------------------------------
def test_tokens_create_quiet_prints_only_the_token(env: dict[str, str]) -> None:
    run(env, "migrate")
    out = run(env, "tokens", "create", "--scopes", "events.write", "-q")
    assert re.fullmatch(r"chk_[A-Za-z0-9_-]{43}\n", out)


def test_accounts_create_reads_the_password_from_stdin(env: dict[str, str]) -> None:
    run(env, "migrate")
    made = run_json(
        env,
        "accounts",
        "create",
        "Acme",
        "--email",
        "Owner@Acme.example",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert made["user"] == "owner@acme.example"
    from callhook.platform import Platform
    from callhook.settings import Settings
    from callhook.store import users as user_store

    platform = Platform.create(Settings.from_env(env))
    try:
        with platform.db.read() as conn:
            user = user_store.check_password(conn, "owner@acme.example", "a long enough password")
        assert user is not None  # the newline that ended the line is not part of the password
    finally:
        platform.db.dispose()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--email", "a@b.example"], None, "pipe it with --password-stdin"),
        (["--email", "a@b.example", "--password-stdin"], "short\n", "at least 8 characters"),
        (["--email", "a@b.example", "--password-stdin"], "", "at least 8 characters"),
        (["--email", "not an email", "--password-stdin"], "long enough pw\n", "valid email"),
        (
            ["--email", "a@b.example", "--password", "x" * 12, "--password-stdin"],
            "y" * 12,
            "not both",
        ),
        (["--password-stdin"], "y" * 12, "give --email too"),
    ],
)
def test_accounts_create_refusals_create_nothing(
    env: dict[str, str], args: list[str], stdin: str | None, message: str
) -> None:
    run(env, "migrate")
    out = run(env, "accounts", "create", "Acme", *args, stdin=stdin, code=out_code(message))
    assert message in out
    assert "Traceback" not in out
    assert run_json(env, "accounts", "list") == []


def out_code(message: str) -> int:
    """Usage mistakes exit 2; refusals by the store (bad password or email) exit 1."""
    return 1 if message in ("at least 8 characters", "valid email") else 2


# --- words -------------------------------------------------------------------------------------
def test_migrate_says_what_it_did(env: dict[str, str], tmp_path: Path) -> None:
    first = run(env, "migrate")
    assert first.startswith("Created the database schema (revision ")
    assert str(tmp_path / "cli.db") in first
    again = run(env, "migrate")
    assert again.startswith("The database schema is up to date (revision ")


def test_migrate_never_prints_a_database_password() -> None:
    from callhook.cli.common import display_url

    shown = display_url("postgresql://callhook:s3cret@db.internal:5432/callhook")
    assert "s3cret" not in shown
    assert shown == "postgresql://callhook:***@db.internal:5432/callhook"


NOT_THERE = [
    ["accounts", "list"],
    ["deliveries", "list"],
    ["endpoints", "list", "acc_01JAAAAAAAAAAAAAAAAAAAAAAA"],
    ["prune", "--older-than-days", "1"],
    ["simulate", "--calls", "1", "--account", "acc_01JAAAAAAAAAAAAAAAAAAAAAAA"],
]


@pytest.mark.parametrize("command", NOT_THERE, ids=lambda c: " ".join(c[:2]))
def test_a_command_on_a_database_file_that_is_not_there_says_to_migrate_and_creates_nothing(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    out = run(env, *command, code=1)
    assert "error: no database at sqlite:///" in out
    assert "run `callhook migrate` to create it" in out
    assert "Traceback" not in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", NOT_THERE, ids=lambda c: " ".join(c[:2]))
def test_a_command_on_a_database_without_tables_says_to_migrate(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    import sqlite3

    sqlite3.connect(tmp_path / "cli.db").close()  # an empty file: no tables at all
    out = run(env, *command, code=1)
    assert "has no Callhook tables: run `callhook migrate`" in out
    assert "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.db"]  # no key file made for it
    run(env, "migrate")
    run(env, "accounts", "list")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("nonsense", "error: invalid database URL"),
        ("postgresql+psycopg2://x@localhost/db", "error: unsupported PostgreSQL driver 'psycopg2'"),
    ],
)
def test_a_url_that_does_not_parse_is_an_error_not_a_traceback(
    env: dict[str, str], url: str, said: str
) -> None:
    out = run({**env, "CALLHOOK_DATABASE_URL": url}, "accounts", "list", code=1)
    assert said in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "argv",
    [["worker"], ["worker", "--processes", "2"], ["serve", "--no-migrate", "--port", "0"]],
    ids=" ".join,
)
@pytest.mark.parametrize("database", ["missing", "empty", "behind"])
def test_processes_refuse_a_database_that_is_not_set_up(
    env: dict[str, str], tmp_path: Path, argv: list[str], database: str
) -> None:
    """Once, in the command: a supervisor would restart refusing children for ever."""
    if database == "empty":
        import sqlite3

        sqlite3.connect(tmp_path / "cli.db").close()
    if database == "behind":  # migrated by an older Callhook
        run(env, "migrate")
        db = Database(env["CALLHOOK_DATABASE_URL"])
        downgrade(db, "0008_status_indexes")
        db.dispose()
    done = subprocess.run(
        [CALLHOOK, *argv], env={**os.environ, **env}, capture_output=True, timeout=60
    )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    expected = {
        "missing": "error: no database at",
        "empty": "has no Callhook tables",
        "behind": f"is at schema revision 0008_status_indexes, this Callhook needs {HEAD}",
    }
    assert expected[database] in err
    assert "error: " in err
    assert "run `callhook migrate`" in err
    assert "restarting" not in err
    assert "Traceback" not in err


def test_worker_says_what_it_serves_at_start(env: dict[str, str]) -> None:
    run(env, "migrate")
    proc = subprocess.Popen(
        [CALLHOOK, "worker", "--processes", "2"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=30), "the worker printed nothing"
        first = proc.stdout.readline().decode()
        assert first.startswith(f"Callhook worker (pid {proc.pid}): 2 delivery processes on ")
        assert env["CALLHOOK_DATABASE_URL"] in first
        assert "/metrics" in first
        time.sleep(0.5)  # let the children start, so the stop below is a real drain
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- one time format in JSON -------------------------------------------------------------------
def _times(doc: Any) -> list[str]:
    """Every value of a key ending in ``_at`` anywhere in ``doc``."""
    found: list[str] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key.endswith("_at") and value is not None:
                found.append(value)
            found += _times(value)
    elif isinstance(doc, list):
        for item in doc:
            found += _times(item)
    return found


def test_json_times_are_rfc3339_utc_with_milliseconds(env: dict[str, str]) -> None:
    run(env, "migrate")
    account = run_json(env, "accounts", "create", "Acme")
    acc = account["id"]
    unsafe = {**env, "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1"}  # no DNS here: a loopback URL
    run(unsafe, "integration", "set-url", acc, "https://localhost:9/hook")
    run(env, "integration", "subscribe", acc, "all")
    published = run_json(env, "emit", "sms", "--account", acc)
    docs = [
        account,
        run_json(env, "accounts", "list"),
        run_json(env, "tokens", "create", "--scopes", "events.write"),
        run_json(env, "tokens", "list"),
        run_json(env, "integration", "show", acc),
        run_json(env, "integration", "secret", acc, "--rotate"),
        run_json(env, "deliveries", "list"),
        run_json(env, "deliveries", "show", published["delivery_id"]),
    ]
    times = _times(docs)
    assert len(times) >= 10
    assert [t for t in times if not TIME.match(t)] == []
