"""Per-call sequence numbers: 1, 2, 3… in commit order, within and across batches."""

from __future__ import annotations

from pathlib import Path

from callhook.store import events as event_store
from tests.factories import make_platform


def test_sequences_within_and_across_batches(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    with platform.db.write() as conn:
        first = event_store.next_sequences(
            conn, [("acc_a", "c1"), ("acc_a", "c2"), ("acc_a", "c1"), ("acc_b", "c1")]
        )
    with platform.db.write() as conn:
        second = event_store.next_sequences(conn, [("acc_a", "c1"), ("acc_a", "c2")])
    assert first == [1, 1, 2, 1]  # accounts do not share a call's counter
    assert second == [3, 2]


def test_a_rolled_back_batch_does_not_use_up_numbers(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    try:
        with platform.db.write() as conn:
            event_store.next_sequences(conn, [("acc_a", "c1")] * 3)
            raise RuntimeError("the batch failed")
    except RuntimeError:
        pass
    with platform.db.write() as conn:
        assert event_store.next_sequences(conn, [("acc_a", "c1")]) == [1]
