"""The store seam (issue 13, item 8): ``callhook.store`` is the only package that knows SQL,
dialects and driver encodings; delivery statuses are spelled through the enum."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import callhook

SRC = Path(callhook.__file__).parent
STORE = SRC / "store"


def _modules_outside_store() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if STORE not in p.parents]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_nothing_outside_store_imports_sqlalchemy_or_the_dialect_seam() -> None:
    offenders = {
        str(p.relative_to(SRC)): sorted(
            n
            for n in _imported(p)
            if n.split(".")[0] == "sqlalchemy"
            or n.startswith(("callhook.store.dialect", "callhook.store.types"))
            or n.endswith(("FastStatement", "time_encoder"))
        )
        for p in _modules_outside_store()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


_STATUS = re.compile(r"""["'](pending|delivered|failed)["']""")


def test_delivery_statuses_are_not_bare_strings_outside_the_enum() -> None:
    allowed = {
        SRC / "core" / "outcome.py",  # the enum itself
        SRC / "events" / "models.py",  # "failed" there is a call's disposition, not a delivery
        SRC / "api" / "v2" / "models.py",  # OpenAPI literals, tested equal to the enum
        SRC / "alerts" / "model.py",  # an alert's own status enum (AlertStatus)
    }
    found = {
        str(p.relative_to(SRC)): _STATUS.findall(p.read_text())
        for p in SRC.rglob("*.py")
        if p not in allowed and "migrations" not in p.parts
    }
    assert {k: v for k, v in found.items() if v} == {}
