"""``callhook endpoints …`` against a real SQLite file: the operator's view of an account's
endpoints, the same rules as the API, and ``callhook integration`` still on the primary one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from callhook.cli.main import app

runner = CliRunner()
CRM = "https://127.0.0.1:9443/crm"
DESK = "https://localhost:9444/desk"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def run_json(env: dict[str, str], *args: str) -> Any:
    return orjson.loads(run(env, *args, "--json"))


@pytest.fixture
def acc(env: dict[str, str]) -> str:
    run(env, "migrate")
    account: str = run_json(env, "accounts", "create", "Acme Telecom")["id"]
    run(env, "integration", "set-url", account, "https://127.0.0.1:9000/primary")
    run(env, "integration", "subscribe", account, "incoming_call_start")
    return account


def test_add_list_show_update_remove(env: dict[str, str], acc: str) -> None:
    added = run_json(
        env,
        "endpoints",
        "add",
        acc,
        CRM,
        "--events",
        "outgoing_call_end,incoming_call_end",
        "--description",
        "CRM",
    )
    assert list(added) == [
        "id",
        "url",
        "description",
        "enabled",
        "subscribed_events",
        "retry_policy",
        "state",
        "state_since",
        "failing_since",
        "next_probe_at",
        "disable_at",
        "slowed_until",
        "rate_limit",
        "max_in_flight",
        "replay_on_recovery",
        "primary",
        "created_at",
        "updated_at",
        "ordering",
        "ordering_bound_seconds",
        "max_age_call_control_seconds",
        "max_age_bulk_seconds",
    ]
    assert added["url"] == CRM
    assert added["subscribed_events"] == ["incoming_call_end", "outgoing_call_end"]
    assert (added["enabled"], added["primary"], added["description"]) == (True, False, "CRM")

    listed = run_json(env, "endpoints", "list", acc)
    assert [e["id"] for e in listed][1:] == [added["id"]]
    assert listed[0]["primary"] is True
    assert listed[0]["subscribed_events"] == ["incoming_call_start"]
    text = run(env, "endpoints", "list", acc)
    assert added["id"] in text
    assert CRM in text
    assert "primary" in text

    assert run_json(env, "endpoints", "show", acc, added["id"]) == added
    with_secret = run_json(env, "endpoints", "show", acc, added["id"], "--secret")
    [secret] = with_secret["secrets"]
    assert secret["secret"].startswith("whsec_")
    assert secret["expires_at"] is None
    shown = run(env, "endpoints", "show", acc, added["id"], "--secret")
    assert secret["secret"] in shown
    assert "CRM" in shown

    updated = run_json(
        env, "endpoints", "update", acc, added["id"], "--events", "all", "--disable", "--url", DESK
    )
    assert updated["subscribed_events"] is None
    assert updated["enabled"] is False
    assert updated["url"] == DESK
    assert updated["description"] == "CRM"

    run(env, "endpoints", "remove", acc, added["id"], code=2)  # not a terminal: needs --yes
    assert len(run_json(env, "endpoints", "list", acc)) == 2
    removed = run(env, "endpoints", "remove", acc, added["id"], "--yes")
    assert removed.strip() == f"Removed {added['id']} and its 0 deliveries"
    assert len(run_json(env, "endpoints", "list", acc)) == 1


def test_integration_keeps_working_on_the_primary_endpoint(env: dict[str, str], acc: str) -> None:
    other = run_json(env, "endpoints", "add", acc, CRM, "--events", "sms")
    run(env, "integration", "subscribe", acc, "voicemail")
    run(env, "integration", "disable", acc)
    shown = run_json(env, "integration", "show", acc)
    assert shown["subscribed_events"] == ["incoming_call_start", "voicemail"]
    assert shown["enabled"] is False
    assert shown["url"] == "https://127.0.0.1:9000/primary"
    again = run_json(env, "endpoints", "show", acc, other["id"])
    assert again == other  # untouched
    primary = run_json(env, "endpoints", "list", acc)[0]
    assert shown["endpoint_id"] == primary["id"]


def test_operator_may_set_the_primary_url(env: dict[str, str], acc: str) -> None:
    primary = run_json(env, "endpoints", "list", acc)[0]
    updated = run_json(env, "endpoints", "update", acc, primary["id"], "--url", DESK)
    assert updated["url"] == DESK
    assert run_json(env, "integration", "show", acc)["url"] == DESK


NO_ACCOUNT = "acc_01JH8Z00000000000000000000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "{acc}", "http://[::1", "--events", "sms"], "URL"),
        (["add", "{acc}", CRM, "--events", "sms,nope"], "subscribed_events: Unknown event 'nope'"),
        (["add", "{acc}", "https://127.0.0.1:9000/primary", "--events", "sms"], "url: another"),
        (["add", "{acc}", CRM, "--events", "sms", "--retry-policy", "often"], "retry_policy"),
        (["add", "acc_01JH8Z00000000000000000000", CRM, "--events", "sms"], "acc_01JH8Z"),
        (["show", "{acc}", "ep_01JH8Z00000000000000000000"], "not found"),
        (["update", "{acc}", "ep_nope", "--disable"], "not found"),
        (["update", "{acc}", "{primary}"], "nothing to change"),
        # Numbers as the API reads them: no other scripts' digits, underscores or signs.
        (["update", "{acc}", "{primary}", "--max-age-bulk", "٣"], "max_age_bulk_seconds"),
        (["update", "{acc}", "{primary}", "--ordering-bound", "1_000"], "ordering_bound_seconds"),
        (["update", "{acc}", "{primary}", "--max-age-call-control", "+60"], "max_age_call"),
        (["remove", "{acc}", "{primary}", "--yes"], "primary endpoint"),
        # An unknown account is said as such, whatever the command (not "endpoint not found").
        (["list", NO_ACCOUNT], f"no account '{NO_ACCOUNT}'"),
        (["show", NO_ACCOUNT, "{primary}"], f"no account '{NO_ACCOUNT}'"),
        (["update", NO_ACCOUNT, "{primary}", "--disable"], f"no account '{NO_ACCOUNT}'"),
        (["remove", NO_ACCOUNT, "{primary}", "--yes"], f"no account '{NO_ACCOUNT}'"),
        (["pause", NO_ACCOUNT, "{primary}"], f"no account '{NO_ACCOUNT}'"),
        (["resume", NO_ACCOUNT, "{primary}"], f"no account '{NO_ACCOUNT}'"),
    ],
)
def test_refusals_change_nothing(
    env: dict[str, str], acc: str, args: list[str], message: str
) -> None:
    before = run_json(env, "endpoints", "list", acc)
    primary = before[0]["id"]
    result = runner.invoke(
        app, ["endpoints", *(a.format(acc=acc, primary=primary) for a in args)], env=env
    )
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert run_json(env, "endpoints", "list", acc) == before


def test_the_limit_holds_for_the_operator_too(env: dict[str, str], acc: str) -> None:
    limited = {**env, "CALLHOOK_MAX_ENDPOINTS_PER_ACCOUNT": "2"}
    run(limited, "endpoints", "add", acc, CRM, "--events", "sms")
    result = runner.invoke(app, ["endpoints", "add", acc, DESK, "--events", "sms"], env=limited)
    assert result.exit_code == 1
    assert "2 endpoints" in result.output
    assert len(run_json(env, "endpoints", "list", acc)) == 2


def test_pause_resume_and_limits_show_in_the_state(env: dict[str, str], acc: str) -> None:
    added = run_json(env, "endpoints", "add", acc, CRM, "--events", "all", "--rate-limit", "50")
    ep = added["id"]
    assert (added["state"], added["rate_limit"], added["max_in_flight"]) == ("active", 50, None)
    paused = run_json(env, "endpoints", "pause", acc, ep)
    assert paused["state"] == "paused"
    assert paused["state_since"] is not None
    assert run_json(env, "endpoints", "pause", acc, ep) == paused  # idempotent
    text = run(env, "endpoints", "show", acc, ep)
    assert "State:       paused since " in text
    assert "Rate limit:  50/s   Max in flight: none" in text
    assert "active → paused  (paused by operator)" in text
    listed = run(env, "endpoints", "list", acc)
    assert "paused" in listed
    resumed = run_json(env, "endpoints", "resume", acc, ep)
    assert resumed["state"] == "active"
    text = run(env, "endpoints", "show", acc, ep)
    assert "paused → active  (resumed by operator)" in text

    changed = run_json(env, "endpoints", "update", acc, ep, "--max-in-flight", "4", "--no-replay")
    assert (changed["rate_limit"], changed["max_in_flight"]) == (50, 4)
    assert changed["replay_on_recovery"] is False
    cleared = run_json(env, "endpoints", "update", acc, ep, "--rate-limit", "0")
    assert (cleared["rate_limit"], cleared["max_in_flight"]) == (None, 4)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--rate-limit", "-1", "--rate-limit: must be 0 (no limit) or a number"),
        ("--rate-limit", "1001", "from 0.01 to 1000"),
        ("--rate-limit", "1e-300", "from 0.01 to 1000"),
        ("--max-in-flight", "65", "--max-in-flight: must be 0 or a whole number from 1 to 64"),
    ],
)
def test_limits_outside_the_caps_are_refused_with_nothing_changed(
    env: dict[str, str], acc: str, option: str, value: str, message: str
) -> None:
    ep = run_json(env, "endpoints", "add", acc, CRM, "--events", "all")["id"]
    before = run_json(env, "endpoints", "show", acc, ep)
    result = runner.invoke(
        app, ["endpoints", "update", acc, ep, option, value, "--description", "x"], env=env
    )
    assert result.exit_code == 2
    assert message in result.output
    assert run_json(env, "endpoints", "show", acc, ep) == before


def test_pausing_unknown_or_disabled_endpoints_is_refused(env: dict[str, str], acc: str) -> None:
    result = runner.invoke(
        app, ["endpoints", "pause", acc, "ep_01JH8Z00000000000000000000"], env=env
    )
    assert result.exit_code == 1
    assert "not found" in result.output
    ep = run_json(env, "endpoints", "add", acc, CRM, "--events", "all", "--disabled")
    assert ep["state"] == "disabled"
    result = runner.invoke(app, ["endpoints", "pause", acc, ep["id"]], env=env)
    assert result.exit_code == 1
    assert "resume it" in result.output
    assert run_json(env, "endpoints", "resume", acc, ep["id"])["enabled"] is True


def test_rotate_gives_any_endpoint_a_new_secret_beside_the_old(
    env: dict[str, str], acc: str
) -> None:
    endpoint = run_json(env, "endpoints", "add", acc, CRM, "--events", "incoming_call_start")
    [before] = run_json(env, "endpoints", "show", acc, endpoint["id"], "--secret")["secrets"]
    rotated = run_json(env, "endpoints", "rotate", acc, endpoint["id"])["secrets"]
    assert [s["secret"] == before["secret"] for s in rotated] == [False, True]
    assert [s["expires_at"] is None for s in rotated] == [True, False]
    assert run_json(env, "endpoints", "show", acc, endpoint["id"], "--secret")["secrets"] == rotated
    printed = run(env, "endpoints", "rotate", acc, endpoint["id"])
    assert printed.count("Secret:") == 3  # the new one and both earlier ones still signing
    run(env, "endpoints", "rotate", acc, "ep_01KF0K8Y20PDDGMEPHX7DTC6DA", code=1)
