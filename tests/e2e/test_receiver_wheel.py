"""The receiver SDK as its own distribution: ``callhook-receiver``, built from this repository.

Its wheel is built, installed into a fresh virtual environment that has nothing else (no index
to fetch a dependency from, none needed), and the standard-library example receiver running
there verifies a real delivery: Callhook's worker signs and sends it over HTTPS (a local CA).
"""

from __future__ import annotations

import email
import json
import os
import ssl
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from tests.factories import make_account, make_platform, publish_sample
from tests.support.receiver import Tls, free_port, wait_for
from tests.support.worker import running_worker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "packages" / "callhook-receiver"


def _bare_env() -> dict[str, str]:
    """A shell's environment without this project's venv or pip settings in it."""
    drop = ("PIP_", "PYTHON", "VIRTUAL_ENV", "CALLHOOK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("-w", str(out), str(PACKAGE)),
        ],
        check=True,
        timeout=300,
    )
    [built] = out.glob("callhook_receiver-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with only the wheel installed (offline: --no-index)."""
    where = tmp_path_factory.mktemp("venv") / "receiver-only"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=300,
        env=_bare_env(),
    )
    return python


def test_the_wheel_holds_the_sdk_and_nothing_else(wheel: Path) -> None:
    import callhook

    names = zipfile.ZipFile(wheel).namelist()
    code = sorted(n for n in names if not n.startswith("callhook_receiver-"))
    expected = sorted(
        # errors.py: the exception tree signing and the SDK raise from (no imports of its own).
        ["callhook/signing.py", "callhook/errors.py"]
        + [
            f"callhook/receiver/{p.name}"
            for p in (ROOT / "src" / "callhook" / "receiver").iterdir()
            if p.is_file() and p.suffix in (".py", ".typed")
        ]
    )
    assert code == expected
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    metadata = email.message_from_bytes(
        zipfile.ZipFile(wheel).read(f"callhook_receiver-{callhook.__version__}.dist-info/METADATA")
    )
    assert metadata["Name"] == "callhook-receiver"
    assert metadata["Version"] == callhook.__version__
    requires = metadata.get_all("Requires-Dist") or []
    assert requires, "the framework adapters' extras"
    assert all("extra ==" in r for r in requires), requires  # nothing without an extra
    assert set(metadata.get_all("Provides-Extra") or []) >= {"fastapi", "flask", "django"}


def test_the_venv_has_the_sdk_and_nothing_else(venv: Path) -> None:
    listed = subprocess.run(
        [str(venv), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        env=_bare_env(),
    ).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert installed - {"pip", "setuptools", "wheel"} == {"callhook-receiver"}
    probe = (
        "import importlib.util as u, callhook.receiver as r;"
        "print(r.verify.__module__, [m for m in ('callhook.platform', 'fastapi', 'sqlalchemy',"
        " 'aiohttp', 'pydantic') if u.find_spec(m) is not None])"
    )
    out = subprocess.run(
        [str(venv), "-c", probe], capture_output=True, text=True, check=True, env=_bare_env()
    ).stdout
    assert out.strip() == "callhook.receiver.verify []"


@pytest.fixture
def platform(tmp_path: Path, tls: Tls) -> Platform:
    return make_platform(tmp_path, ca_bundle=tls.ca_path)


@pytest.fixture
def receiver(
    venv: Path, tls: Tls, tmp_path: Path, platform: Platform
) -> Iterator[tuple[int, str, Path]]:
    """``examples/stdlib_receiver.py`` over HTTPS, run by the receiver-only venv's Python."""
    account = make_account(platform)  # for its secret; the test sets the URL
    cert = tls.ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    port = free_port()
    record = tmp_path / "processed.jsonl"
    env = {
        **_bare_env(),
        "CALLHOOK_WEBHOOK_SECRET": account.secret,
        "CALLHOOK_DEDUP_DB": str(tmp_path / "dedup.sqlite3"),
        "CALLHOOK_EXAMPLE_RECORD": str(record),
    }
    proc = subprocess.Popen(
        [
            *(str(venv), str(ROOT / "examples" / "stdlib_receiver.py"), "--port", str(port)),
            *("--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem")),
        ],
        cwd=tmp_path,  # nothing of this repository on its path but the example itself
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first == f"listening on https://127.0.0.1:{port}/webhook\n", first
        yield port, account.id, record
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_a_real_delivery_verifies_in_the_receiver_only_venv(
    receiver: tuple[int, str, Path], tls: Tls, platform: Platform
) -> None:
    port, account_id, record = receiver
    url = f"https://localhost:{port}/webhook"
    from callhook.store import integrations as integration_store

    with platform.db.write() as conn:
        integration_store.set_url(
            conn, account_id, url, now=platform.clock.now(), box=platform.box, rng=platform.rng
        )
        integration_store.subscribe(
            conn, account_id, ["incoming_call_start"], now=platform.clock.now()
        )
    published = publish_sample(platform, account_id, "incoming_call_start")
    assert published.delivery_id is not None

    def lines() -> list[dict[str, str]]:
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    async with running_worker(platform):
        await wait_for(lambda: len(lines()) == 1, timeout=30)
    assert lines() == [{"id": published.id, "event": "incoming_call_start", "outcome": "call"}]
    with platform.db.read() as conn:
        delivered = delivery_store.get(conn, published.delivery_id)
    assert delivered.status == "delivered"
    assert delivered.attempt_log[-1].status_code == 200

    # The same receiver refuses what Callhook did not sign.
    forged = httpx.post(
        url,
        content=b'{"id":"evt_x","event":"sms"}',
        headers={"X-Webhook-Timestamp": "1", "X-Webhook-Signature": "sha256=00"},
        verify=ssl.create_default_context(cafile=str(tls.ca_path)),
    )
    assert forged.status_code == 401
