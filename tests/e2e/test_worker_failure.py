"""``callhook worker``, ``serve`` and ``demo`` stop with exit 1 and say why when the delivery
worker's own task dies, instead of running on with leases nobody renews (issue 16, item 4).

The real command runs in a child process with one bug injected before it starts: the lease
bookkeeping the renewer calls on every tick raises.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_platform
from tests.support.receiver import free_port

INJECTED = """
import sys
from callhook.delivery import leases
from callhook.cli import main

def to_renew(self):
    raise RuntimeError("injected renewal bug")

leases.Leases.to_renew = to_renew
sys.argv = ["callhook", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    "command",
    [
        ["worker"],
        ["serve", "--host", "127.0.0.1", "--port", "{port}"],
        ["demo", "--port", "{port}", "--receiver-port", "{port}", "--no-traffic"],
    ],
)
def test_a_dead_lease_renewer_ends_the_process_with_exit_1_and_the_reason(
    tmp_path: Path, command: list[str]
) -> None:
    platform = make_platform(tmp_path)
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_LEASE_SECONDS": "0.3",  # the renewer ticks every 0.1 s
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }
    args = [arg.format(port=free_port()) if arg == "{port}" else arg for arg in command]
    # A safety net, not a threshold: the process ends by itself on the first renewal tick.
    done = subprocess.run(
        [sys.executable, "-c", INJECTED, *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr[-2000:]
    assert "delivery worker stopped: its lease renewer failed" in stderr
    assert "injected renewal bug" in stderr
    assert "worker task failed; stopping the worker" in stderr  # logged, with the traceback
    assert "Traceback" in stderr
