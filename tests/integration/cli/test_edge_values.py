"""Issue 11, classes 3 and 4, on the command line, on SQLite and PostgreSQL: time options are
range-checked RFC 3339 with a clear message (exit 2, no traceback); ``emit`` goes through the
one publish validator, so it refuses what ingest refuses, with the same words, and stores
nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.errors import PayloadInvalid
from callhook.events import sample_publish_request
from callhook.events.validate import validate_publish_item
from tests.factories import BACKENDS, TEST_MASTER_KEY, fresh_postgres_url
from tests.support.edge_values import BAD_TIMES, EDGE_TIMES, RANGE, on_the_command_line

runner = CliRunner()
NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


@dataclass
class Cli:
    env: dict[str, str]
    account: str

    def run(self, *args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=self.env)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        if code:  # a refusal is an exit with a message, not an escaped exception
            assert isinstance(result.exception, SystemExit), result.exception
        return result.output

    def said(self, *args: str, code: int) -> str:
        """What a refused command printed, on one line (rich wraps it to the terminal)."""
        return " ".join(self.run(*args, code=code).split())

    def deliveries(self) -> list[Any]:
        listed: list[Any] = orjson.loads(self.run("deliveries", "list", "--json"))
        return listed


@pytest.fixture(scope="module", params=BACKENDS)
def cli(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    env = {"CALLHOOK_ALLOW_UNSAFE_TARGETS": "1", "CALLHOOK_LOG_LEVEL": "WARNING"}
    if request.param == "postgresql":
        env |= {
            "CALLHOOK_DATABASE_URL": fresh_postgres_url(),
            "CALLHOOK_MASTER_KEY": TEST_MASTER_KEY,
        }
    else:
        path = tmp_path_factory.mktemp("cli") / "cli.db"
        env["CALLHOOK_DATABASE_URL"] = f"sqlite:///{path}"
    runner.invoke(app, ["migrate"], env=env, catch_exceptions=False)
    setup = Cli(env, "")
    account = orjson.loads(setup.run("accounts", "create", "Acme", "--json"))["id"]
    setup.run("integration", "set-url", account, "https://localhost:9/hook")
    setup.run("integration", "subscribe", account, "incoming_call_start")
    return Cli(env, account)


# --- Class 3: time options ---------------------------------------------------------------------
@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize(("value", "reason"), BAD_TIMES, ids=[v for v, _ in BAD_TIMES])
def test_redeliver_refuses_bad_times_by_name(
    cli: Cli, option: str, value: str, reason: str
) -> None:
    args = ["--since", "2026-01-01T00:00:00Z", option, value]
    out = cli.said("deliveries", "redeliver", *args, code=2)
    assert option in out
    assert on_the_command_line(reason) in out
    assert f"(given: {value!r})" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "pending"], "--status must be one of failed, delivered, expired"),
        (["--status", "retrying"], "--status must be one of failed, delivered, expired"),
        (["--status", ""], "--status must be one of failed, delivered, expired"),
        (["dlv_x", "--status", "expired"], "--status goes with --since"),
    ],
)
def test_redeliver_refuses_a_status_it_cannot_take(cli: Cli, args: list[str], message: str) -> None:
    window = [] if args[0].startswith("dlv_") else ["--since", "2026-01-01T00:00:00Z"]
    assert message in cli.said("deliveries", "redeliver", *window, *args, code=2)


@pytest.mark.parametrize("value", [*EDGE_TIMES[:2], "2026-01-15T10:00", "2026-01-15 10:00:00"])
def test_redeliver_takes_edge_times_and_zoneless_utc(cli: Cli, value: str) -> None:
    out = cli.run("deliveries", "redeliver", "--since", value, "--json")
    assert orjson.loads(out) == {"queued": 0}
    out = cli.run("deliveries", "redeliver", "--since", value, "--until", EDGE_TIMES[2], "--json")
    assert orjson.loads(out) == {"queued": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", EDGE_TIMES[2]], "--since must be earlier than now when --until is left out"),
        (["--since", EDGE_TIMES[3]], "--since must be earlier than now when --until is left out"),
        (
            ["--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            "--until must be later than --since",
        ),
        (
            ["--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            "--until must be later than --since",
        ),
    ],
)
def test_redeliver_refuses_a_window_that_holds_no_instant(
    cli: Cli, args: list[str], message: str
) -> None:
    assert message in cli.said("deliveries", "redeliver", *args, code=2)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"),
    ],
)
def test_list_refuses_a_span_that_holds_no_instant(cli: Cli, since: str, until: str) -> None:
    out = cli.said("deliveries", "list", "--since", since, "--until", until, code=2)
    assert "--until must be later than --since" in out
    assert cli.run("deliveries", "list", "--since", since, "--json") == "[]\n"


@pytest.mark.parametrize(("value", "reason"), BAD_TIMES, ids=[v for v, _ in BAD_TIMES])
def test_sample_at_refuses_bad_times(cli: Cli, value: str, reason: str) -> None:
    out = cli.said("events", "sample", "incoming_call_start", "--at", value, code=2)
    assert "--at" in out
    assert reason in out  # ``--at`` wants a zone: a sample is for a receiver


def test_verify_now_refuses_times_outside_the_range(cli: Cli, tmp_path: Path) -> None:
    headers = tmp_path / "headers.txt"
    headers.write_text("webhook-id: evt_1\nwebhook-timestamp: 1768473000\n")
    body = tmp_path / "body.json"
    body.write_bytes(b"{}")
    secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    common = ["verify", "--secret", secret, "--headers", str(headers), "--body", str(body)]
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "tomorrow"):
        out = cli.said(*common, "--now", value, code=2)
        assert "--now" in out


# --- Class 4: emit and the one validator --------------------------------------------------------
def _sample(**changes: Any) -> dict[str, Any]:
    item = sample_publish_request("incoming_call_start", random.Random(5), now=NOW)
    item["data"].update(changes)
    return item


def _expected(item: dict[str, Any]) -> str:
    with pytest.raises(PayloadInvalid) as info:
        validate_publish_item(item)
    return info.value.message


@pytest.mark.parametrize(
    ("case", "data", "extra"),
    [
        ("NUL in the call id", {"call_id": "call\x00"}, []),
        ("integer call id", {"call_id": 12345}, []),
        ("year 1 start", {"started_at": "0001-01-01T00:00:00+01:00"}, []),
        ("year 9999 start", {"started_at": "9999-12-31T23:59:59-01:00"}, []),
        ("escape in a name", {"caller_name": "ACME\x1b[2J"}, []),
        ("pbx_id not the call", {}, ["--pbx-id", "another-call"]),
        ("bad account", {}, ["--account", "acc 1"]),
        ("control in the key", {}, ["--idempotency-key", "k\x1b"]),
    ],
)
def test_emit_refuses_what_ingest_refuses(
    cli: Cli, case: str, data: dict[str, Any], extra: list[str]
) -> None:
    item = _sample(**data)
    request = {**item, "account_id": cli.account}
    options = dict(zip(extra[::2], extra[1::2], strict=True))
    request["pbx_id"] = options.get("--pbx-id", item["data"]["call_id"])
    if isinstance(request["pbx_id"], int):
        del request["pbx_id"]  # emit takes the pbx_id from the data only when it is text
    request["account_id"] = options.get("--account", cli.account)
    if "--idempotency-key" in options:
        request["idempotency_key"] = options["--idempotency-key"]
    expected = _expected(request)
    before = cli.deliveries()
    args = ["emit", "incoming_call_start", "--account", cli.account]
    args += ["--data", orjson.dumps(item["data"]).decode(), *extra]
    out = cli.said(*args, code=1)
    assert expected in out, (case, out)
    assert cli.deliveries() == before


def test_emit_with_data_takes_the_pbx_id_from_it(cli: Cli) -> None:
    item = _sample()
    args = ["emit", "incoming_call_start", "--account", cli.account, "--json"]
    out = cli.run(*args, "--data", orjson.dumps(item["data"]).decode())
    assert orjson.loads(out)["pbx_id"] == item["data"]["call_id"]


def test_deliveries_show_an_impossible_id_is_not_found(cli: Cli) -> None:
    for value in ("dlv_\x00", "dlv_nope", "x" * 300):
        out = cli.said("deliveries", "show", value, code=1)
        assert "not found" in out


def test_the_range_message_is_the_documented_one() -> None:
    assert _expected(_sample(started_at="0001-01-01T00:00:00+01:00")) == (
        f"data.started_at: value {RANGE}"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--event", "nope"], 2, "--event: unknown event 'nope' (callhook events list shows them)"),
        (["--account", "acc_01KF0K8Y20PDDGMEPHX7DTC6DB"], 1, "no account"),
        (["--status", "lost"], 2, "--status must be one of pending, retrying, waiting"),
    ],
)
def test_deliveries_list_refuses_what_cannot_match(
    cli: Cli, args: list[str], code: int, message: str
) -> None:
    assert message in cli.said("deliveries", "list", *args, code=code)


def test_redeliver_refuses_an_unknown_account(cli: Cli) -> None:
    out = cli.said(
        "deliveries",
        "redeliver",
        "--since",
        "2026-01-01T00:00:00Z",
        "--account",
        "acc_01KF0K8Y20PDDGMEPHX7DTC6DB",
        code=1,
    )
    assert "no account" in out


def test_deliveries_list_pages_and_filters_like_the_api(cli: Cli) -> None:
    # An account of its own: the module's account has other tests' deliveries.
    account = orjson.loads(cli.run("accounts", "create", "Paged", "--json"))["id"]
    cli.run("integration", "set-url", account, "https://localhost:9/paged")
    cli.run("integration", "subscribe", account, "incoming_call_start")
    cli = Cli(cli.env, account)
    emitted = [
        orjson.loads(cli.run("emit", "incoming_call_start", "--account", cli.account, "--json"))
        for _ in range(5)
    ]
    listed = orjson.loads(cli.run("deliveries", "list", "--account", cli.account, "--json"))
    newest = [d["id"] for d in listed]
    assert set(newest) == {e["delivery_id"] for e in emitted}
    seen: list[str] = []
    args = ["deliveries", "list", "--account", cli.account, "--limit", "2", "--json"]
    while True:
        page = orjson.loads(cli.run(*args, *(["--before", seen[-1]] if seen else [])))
        seen += [d["id"] for d in page]
        if len(page) < 2:
            break
    assert seen == newest
    assert f"older: --before {newest[1]}" in cli.said(
        "deliveries", "list", "--account", cli.account, "--limit", "2", code=0
    )
    pbx_id = listed[0]["pbx_id"]
    by_pbx = orjson.loads(
        cli.run("deliveries", "list", "--account", account, "--pbx-id", pbx_id, "--json")
    )
    assert [d["id"] for d in by_pbx] == [newest[0]]
    primary = listed[0]["endpoint_id"]
    mine = [
        "--account",
        cli.account,
        "--endpoint",
        primary,
        "--since",
        "2000-01-01T00:00",
        "--json",
    ]
    assert [d["id"] for d in orjson.loads(cli.run("deliveries", "list", *mine))] == newest
    before = ["--account", cli.account, "--until", "2000-01-01T00:00:00Z", "--json"]
    assert orjson.loads(cli.run("deliveries", "list", *before)) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--before", "dlv_x"], 2, "--before: not a delivery id"),
        (["--before", "dlv_7ZZZZZZZZZ0000000000000000"], 2, "--before: not a delivery id"),
        (["--pbx-id", "call\x00"], 2, "--pbx-id: 1–128 letters"),
        (["--pbx-id", "x" * 129], 2, "--pbx-id: 1–128 letters"),
        (["--endpoint", "ep_01KF0K8Y20PDDGMEPHX7DTC6DB"], 2, "--endpoint needs --account"),
        (["--since", "yesterday"], 2, "--since"),
    ],
)
def test_deliveries_list_refuses_bad_options_by_name(
    cli: Cli, args: list[str], code: int, message: str
) -> None:
    assert message in cli.said("deliveries", "list", *args, code=code)


def test_deliveries_list_refuses_another_accounts_endpoint(cli: Cli) -> None:
    other = orjson.loads(cli.run("accounts", "create", "Other", "--json"))["id"]
    cli.run("integration", "set-url", other, "https://localhost:9/other")
    theirs = orjson.loads(cli.run("endpoints", "list", other, "--json"))[0]["id"]
    out = cli.said("deliveries", "list", "--account", cli.account, "--endpoint", theirs, code=1)
    assert "not found" in out


@pytest.mark.parametrize(
    "args",
    [
        ("accounts", "create", "A" * 201),
        ("tokens", "create", "--scopes", "events.write", "--name", "N" * 201),
    ],
)
def test_a_name_longer_than_stored_is_refused_alike_on_both(
    cli: Cli, args: tuple[str, ...]
) -> None:
    """SQLite kept it (and the row later stopped `copy-database` to PostgreSQL); PostgreSQL
    answered with a driver traceback. Both now refuse it by name, before writing."""
    before = cli.run("accounts", "list", "--json"), cli.run("tokens", "list", "--json")
    assert "name: at most 200 characters" in cli.said(*args, code=1)
    assert (cli.run("accounts", "list", "--json"), cli.run("tokens", "list", "--json")) == before
    cli.run(*args[:-1], args[-1][:200])  # at the bound: taken
