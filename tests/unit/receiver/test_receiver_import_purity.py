"""The receiver core imports only the standard library (and callhook.signing)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("fastapi", "starlette", "flask", "django", "aiohttp", "redis", "pydantic", "rich")


def test_core_imports_no_framework() -> None:
    code = (
        "import sys, callhook.receiver, callhook.receiver.dedup, callhook.receiver.explain\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "bad += sorted(m for m in sys.modules if m.startswith('callhook.events'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
