"""`make run`'s process, `callhook demo`: it delivers verified events, stops cleanly, and a second
run keeps what the first made and the user changed."""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from callhook.signing import verify_callhook, verify_standard
from tests.e2e.dashboard.servers import ReceiverThread, eventually
from tests.support.receiver import Tls, free_port

pytestmark = pytest.mark.e2e

CALLHOOK = str(Path(sys.executable).parent / "callhook")
ROOT = Path(__file__).resolve().parents[2]
BANNER_END = "The built-in receiver verifies both signatures"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new shell: no CALLHOOK_* variable the test run may have set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLHOOK_")}
    return {**env, "COLUMNS": "200", **extra}


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    output: list[str]
    port: int
    _partial: bytes = b""

    @property
    def text(self) -> str:
        return "".join(self.output)

    @property
    def exported(self) -> dict[str, str]:
        """The variables of the ``export`` line printed for the README's commands."""
        line = self.value("export ")
        return dict(item.split("=", 1) for item in line.split())

    def value(self, prefix: str) -> str:
        """The rest of the first output line starting (after indentation) with ``prefix``."""
        lines = (line.strip() for line in self.output)
        return next(line[len(prefix) :].strip() for line in lines if line.startswith(prefix))

    def read_until(self, predicate: str, timeout: float = 60) -> None:
        """Read output until a line contains ``predicate`` (raw reads: a buffered ``readline``
        would hold lines the selector no longer sees)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not any(predicate in line for line in self.output):
            assert time.monotonic() < deadline, self.text + self._partial.decode()
            if selector.select(timeout=0.5):
                chunk = os.read(fd, 65536)
                assert chunk or self.proc.poll() is None, self.text
                self._partial += chunk
                *lines, rest = self._partial.split(b"\n")
                self.output += [line.decode() + "\n" for line in lines]
                self._partial = rest
            else:
                assert self.proc.poll() is None, self.text


@contextmanager
def demo(cwd: Path, *args: str, env: dict[str, str]) -> Iterator[Demo]:
    """``callhook demo`` in ``cwd`` (its ./callhook.db), up to the end of its banner."""
    port = free_port()
    proc = subprocess.Popen(
        [CALLHOOK, "demo", "--port", str(port), "--receiver-port", str(free_port()), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    running = Demo(proc, [], port)
    try:
        running.read_until(BANNER_END)
        yield running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_delivers_verified_events_and_stops_cleanly(tmp_path: Path) -> None:
    with demo(tmp_path, env=_clean_env()) as running:
        running.read_until("✓ verified")
        token = running.value("API token:")
        assert token.startswith("chk_")
        assert running.value("Webhook secret:").startswith("whsec_")
        assert "✗" not in running.text  # no delivery failed verification
        response = httpx.get(
            f"http://127.0.0.1:{running.port}/api/v2/webhooks/available",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert len(response.json()["data"]) == 14


def _cli(cwd: Path, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [CALLHOOK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def https_receiver(tls: Tls) -> Iterator[ReceiverThread]:
    thread = ReceiverThread(tls).start()
    try:
        yield thread
    finally:
        thread.stop()


def test_a_second_run_keeps_the_demo_a_changed_url_and_one_token(
    tmp_path: Path, tls: Tls, https_receiver: ReceiverThread
) -> None:
    """As a user would: `make run`, point the demo at a local HTTPS receiver, restart."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ROOT / ".gitignore", clone / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)

    # First run, started with the receiver's CA as the printed instructions say.
    with demo(clone, "--no-traffic", env=_clean_env(CALLHOOK_CA_BUNDLE=str(tls.ca_path))) as one:
        token, secret = one.value("API token:"), one.value("Webhook secret:")
        account = one.exported["ACCOUNT"]
        assert "(Demo PBX, created now)" in one.text
        assert "(the built-in receiver)" in one.text
        assert one.exported == {
            "CALLHOOK": f"http://127.0.0.1:{one.port}",
            "ACCOUNT": account,
            "TOKEN": token,
            "SECRET": secret,
        }
        assert account.startswith("acc_")
        assert "CALLHOOK_ALLOW_UNSAFE_TARGETS=1 callhook integration set-url $ACCOUNT" in one.text
        assert "CALLHOOK_CA_BUNDLE=/path/to/ca.pem make run" in one.text

    # The user points the demo at their receiver, exactly as the banner told them.
    unsafe = _clean_env(CALLHOOK_ALLOW_UNSAFE_TARGETS="1")
    _cli(clone, "integration", "set-url", account, https_receiver.url, env=unsafe)

    # Second run, plain `make run` again: nothing reset, nothing minted, the CA remembered.
    with demo(clone, "--no-traffic", env=_clean_env()) as two:
        assert two.value("API token:") == token
        assert two.value("Webhook secret:") == secret
        assert two.exported["ACCOUNT"] == account
        assert "(Demo PBX, from an earlier run, as you left it)" in two.text
        assert f"{https_receiver.url} (yours; the built-in receiver still listens)" in two.text
        assert f"CA bundle: {tls.ca_path} (remembered from an earlier run)" in two.text

        tokens = orjson.loads(
            _cli(clone, "tokens", "list", "--account", account, "--json", env=_clean_env())
        )
        active = [t for t in tokens if t["revoked_at"] is None]
        assert [t["name"] for t in active] == ["demo (make run)"]
        assert len(tokens) == 1

        # A delivery reaches the user's HTTPS receiver, verified with the printed secret.
        _cli(clone, "emit", "sms", "--account", account, env=_clean_env())
        assert https_receiver.receiver is not None
        received = https_receiver.receiver.received
        eventually(lambda: len(received) == 1, timeout=30)
        verify_callhook(received[0].headers, received[0].body, [secret], now=time.time())
        verify_standard(received[0].headers, received[0].body, [secret], now=time.time())
        response = httpx.get(
            f"http://127.0.0.1:{two.port}/api/v2/webhooks",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.json()["data"] == [
            {"event": e["event"]}
            for e in httpx.get(
                f"http://127.0.0.1:{two.port}/api/v2/webhooks/available",
                headers={"Authorization": f"Bearer {token}"},
            ).json()["data"]
        ]

    # Everything the demo left beside its database is ignored by git, the key owner-only.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert status == ["?? .gitignore"]
    assert sorted(p.name for p in clone.iterdir() if p.name.startswith("callhook.")) == sorted(
        [
            "callhook.db",
            "callhook.db.wake",
            "callhook.db.write-lock",
            "callhook.demo.json",
            "callhook.key",
        ]
        + [p.name for p in clone.glob("callhook.db-*")]
    )
    for secret_file in ("callhook.key", "callhook.demo.json"):
        assert (clone / secret_file).stat().st_mode & 0o777 == 0o600
    assert token not in (clone / "callhook.demo.json").read_text()
    assert re.search(r'"ca_bundle": ".*ca\.pem"', (clone / "callhook.demo.json").read_text())
