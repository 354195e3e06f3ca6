"""The shell commands of the README, docs/api.md, docs/receiving.md and docs/deployment.md run as
written, from a fresh clone, against a live server.

Every fenced ``sh``/``bash``/``shell``/``console`` block of those pages is marked: ``runnable``
(run here) or ``not-runnable: why`` (installing elsewhere, administering PostgreSQL, restarting
the server this test runs…); an unmarked block fails the test, so each new one is decided on.

As a new user would: a copy of the repository's files (with the ``.venv`` that ``make setup``
made), a shell whose PATH does not have the CLI, the command ``make run`` runs, started in that
copy, and then each page's runnable blocks in order in one bash session, after the two lines
``make run`` printed for "another terminal" (``. .venv/bin/activate`` and the ``export`` of the
demo's address, account, token and secret). ``curl`` fails on an HTTP error status and bash stops
at the first failing command. Only the ports differ from the page (free ones instead of 8000,
8001, 4000, 4001, 4100, 8100), and docs/deployment.md's PostgreSQL database is a fresh schema of
the test server.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_demo import Demo, _clean_env
from tests.factories import fresh_postgres_url
from tests.support.receiver import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("README.md", "docs/api.md", "docs/receiving.md", "docs/deployment.md")
SHELLS = ("sh", "bash", "shell", "console")
FENCE = re.compile(r"^( *)```(\S*)(.*)$")
DOCUMENTED_PORTS = (8000, 8001, 4000, 4001, 4100, 8100)
DOCUMENTED_DATABASE = "postgresql://postgres@127.0.0.1:5432/callhook"
#: What every page's script starts with (before the lines `make run` printed).
PRELUDE = """\
set -euo pipefail
# An HTTP error status is a failure, as it is for a person reading the answer (a command that
# asks for --fail itself, e.g. a readiness loop, keeps its own).
curl() {
  case " $* " in
    *" -f "*|*" -sf "*|*" -fs "*|*" --fail "*) command curl "$@" ;;
    *) command curl --fail-with-body --silent --show-error "$@" ;;
  esac
}
"""


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    runnable: bool
    text: str


def blocks(page: str) -> list[Block]:
    """The fenced shell blocks of ``page`` (indented ones in lists too)."""
    found: list[Block] = []
    lines = (ROOT / page).read_text().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None or not match.group(2):
            i += 1
            continue
        indent, language, rest = match.groups()
        body: list[str] = []
        j = i + 1
        while not lines[j].startswith(indent + "```"):
            body.append(lines[j][len(indent) :])
            j += 1
        if language in SHELLS:
            marker = rest.strip()
            assert marker == "runnable" or marker.startswith("not-runnable: "), (
                f"{page}:{i + 1}: mark this block `runnable` or `not-runnable: why`"
            )
            found.append(Block(page, i + 1, marker == "runnable", "\n".join(body) + "\n"))
        i = j + 1
    return found


def test_every_shell_block_is_marked_and_most_run() -> None:
    found = [b for page in PAGES for b in blocks(page)]
    runnable = [b for b in found if b.runnable]
    assert {b.page for b in runnable} == set(PAGES)
    assert len(runnable) >= 15


@dataclass
class Clone:
    path: Path
    ports: dict[int, int]

    def localize(self, text: str) -> str:
        for documented, actual in self.ports.items():
            text = re.sub(rf"(?<=[:\s]){documented}\b", str(actual), text)
        return text


@pytest.fixture
def clone(tmp_path: Path) -> Clone:
    """The repository's tracked files as they are now, plus the .venv `make setup` made."""
    where = tmp_path / "callhook"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = ROOT / name.decode()
        if source.is_file():
            target = where / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (where / ".venv").symlink_to(ROOT / ".venv")
    return Clone(where, {port: free_port() for port in DOCUMENTED_PORTS})


def _make_run_command() -> list[str]:
    """The recipe of the Makefile's `run` target, as make would run it."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe is not None
    return recipe.group(1).replace("$(BIN)", ".venv/bin").split()


@pytest.fixture
def demo(clone: Clone) -> Iterator[Demo]:
    """What `make run` starts, in the clone (its ./callhook.db), on the free ports."""
    env = _clean_env(
        CALLHOOK_PORT=str(clone.ports[8000]),
        CALLHOOK_DEMO_RECEIVER_PORT=str(clone.ports[8001]),
    )
    proc = subprocess.Popen(
        [*_make_run_command(), "--no-traffic"],
        cwd=clone.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    running = Demo(proc, [], clone.ports[8000])
    try:
        running.read_until("The built-in receiver verifies")
        yield running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _another_terminal(demo: Demo) -> str:
    """The lines `make run` printed to paste in another terminal, as printed."""
    text = demo.text
    start = text.index("In another terminal")
    pasted = [
        line.strip()
        for line in text[start:].splitlines()[1:3]
        if line.strip().startswith((". ", "export "))
    ]
    assert len(pasted) == 2, text
    return "\n".join(pasted) + "\n"


def _shell_env(clone: Clone) -> dict[str, str]:
    """A new terminal's environment: the CLI is not on PATH until the venv is activated."""
    venv_bins = {str(ROOT / ".venv" / "bin"), str(Path(sys.executable).parent)}
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p not in venv_bins]
    env = _clean_env(PATH=os.pathsep.join(path))
    env.pop("VIRTUAL_ENV", None)
    return env


def _run_page(clone: Clone, page: str, setup: str) -> None:
    script = PRELUDE + setup
    for block in blocks(page):
        if block.runnable:
            # On a line of its own even after output without a final newline (curl's JSON).
            script += f"printf '\\n### {page}:{block.line}\\n'\n" + clone.localize(block.text)
    if page == "docs/deployment.md":
        script = script.replace(DOCUMENTED_DATABASE, fresh_postgres_url())
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=clone.path,
        env=_shell_env(clone),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its background jobs too are stopped below
    )
    try:
        output, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{page}: still running after 180 s\n{output.decode(errors='replace')[-6000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, f"{page}: exit {proc.returncode}\n{text[-6000:]}"
    ran = re.findall(rf"^### {re.escape(page)}:(\d+)$", text, re.MULTILINE)
    assert len(ran) == sum(b.runnable for b in blocks(page))


def ensure_tools() -> None:
    """curl and jq, installed by `make tools` when missing; the test fails, never skips,
    without them."""
    if not (shutil.which("curl") and shutil.which("jq")) and shutil.which("make"):
        subprocess.run(["make", "-s", "tools"], cwd=ROOT, check=False)
    missing = [tool for tool in ("curl", "jq") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing and `make tools` could not install them"


@pytest.mark.timeout(600)
def test_the_docs_run_as_written(clone: Clone, demo: Demo) -> None:
    ensure_tools()
    setup = _another_terminal(demo)
    assert setup.startswith(". .venv/bin/activate\nexport CALLHOOK=")
    # Without the first line the CLI is not there: what the README now says up front.
    bare = subprocess.run(
        ["bash", "-c", "callhook --help"], cwd=clone.path, env=_shell_env(clone), check=False
    )
    assert bare.returncode == 127
    for page in PAGES:
        _run_page(clone, page, setup)
