"""docs/receiving.md's worked example is the committed vector, and the vector verifies."""

from __future__ import annotations

import json
from pathlib import Path

from callhook.receiver import verify

ROOT = Path(__file__).parents[3]


def test_worked_example_matches_vector() -> None:
    doc = (ROOT / "docs" / "receiving.md").read_text("utf-8")
    vectors = json.loads((ROOT / "tests" / "vectors" / "signatures.json").read_text("utf-8"))
    [vector] = [v for v in vectors["vectors"] if v["name"] == "delivery"]
    assert vector["body"] in doc
    assert vector["secrets"][0] in doc
    for name, value in vector["headers"].items():
        assert f"{name}: {value}" in doc
    body = vector["body"].encode()
    assert verify(vector["headers"], body, vector["secrets"], now=vector["timestamp"])
