from __future__ import annotations

from pathlib import Path

from gateway.core import Outgoing
from gateway.outbox import MEMORY_ROWS, Outbox


def test_outbox_keeps_order_and_dedupe_keys_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "site.sqlite"
    outbox = Outbox(path)
    for i in range(5):
        outbox.enqueue_many([([Outgoing(f"t/{i}", str(i).encode())], ("dev", 1, i))])
    first, second = outbox.pending(0, 2)
    outbox.delete([first[0]])
    outbox.close()

    reopened = Outbox(path)
    assert [m.topic for _, m in reopened.pending(0, 10)] == ["t/1", "t/2", "t/3", "t/4"]
    assert reopened.pending(second[0], 10)[0][1].topic == "t/2"
    assert reopened.seen_keys(keys_per_device=2) == [("dev", 1, 3), ("dev", 1, 4)]
    reopened.close()


def test_outbox_seen_is_bounded_while_running(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "site.sqlite", keys_per_device=16)
    for batch in range(10):
        outbox.enqueue_many([([], ("a", 1, batch * 10 + i)) for i in range(10)]
                            + [([], ("b", 1, batch))])
    assert outbox.seen_count() == 16 + 10
    assert outbox.seen_keys(16)[-1] == ("b", 1, 9)
    assert ("a", 1, 99) in outbox.seen_keys(16) and ("a", 1, 83) not in outbox.seen_keys(16)
    outbox.close()


def test_outbox_keeps_the_latest_core_state_row_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "site.sqlite"
    outbox = Outbox(path)
    outbox.enqueue_many([([Outgoing("t", b"1")], None)], {"device/a": "1", "mark": "5"})
    outbox.enqueue_many([([Outgoing("t", b"2")], None)], {"device/a": "2"})
    outbox.close()
    reopened = Outbox(path)
    assert reopened.core_state() == {"device/a": "2", "mark": "5"}
    reopened.close()


def test_outbox_seen_trims_a_device_once_it_took_an_eighth_more(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "site.sqlite", keys_per_device=16)
    counts = []
    for seq in range(40):  # one key per batch: a trim every 2 batches, not every batch
        outbox.enqueue_many([([], ("c", 1, seq))])
        counts.append(outbox.seen_count())
    assert max(counts) == 16 + 16 // 8 - 1  # trimmed as the second one comes in
    assert counts[-1] in (16, 17) and 17 in counts[20:]
    assert [s for _, _, s in outbox.seen_keys(16)] == list(range(24, 40))
    outbox.close()


def _rows(outbox: Outbox, after_id: int) -> list[tuple[int, Outgoing]]:
    return [(i, Outgoing(*m)) for i, m in outbox.pending(after_id, 10_000)]


def test_outbox_pending_hands_over_commits_after_the_tail_as_the_table_holds_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "site.sqlite"
    outbox = Outbox(path)
    outbox.enqueue_many([([Outgoing("t/0", b"0")], None)])
    last = outbox.pending(0, 10)[-1][0]  # read to the end: later commits are remembered
    for i in range(1, 6):
        outbox.enqueue_many([([Outgoing(f"t/{i}", str(i).encode(), i % 2 == 0),
                               Outgoing(f"u/{i}", b"x")], ("dev", 1, i))])
    outbox.enqueue_many([([], ("dev", 1, 99))])  # a key alone adds no row
    handed = outbox.pending(last, 4)
    assert len(handed) == 4
    outbox.delete([i for i, _ in handed[:2]])
    outbox.park([handed[3][0]], "refused")
    rest = outbox.pending(handed[-1][0], 100)
    assert outbox.pending(handed[1][0], 100) == [handed[2], *rest]  # an earlier id re-reads
    from_disk = Outbox(path)
    assert _rows(from_disk, last) == [handed[2], *rest]
    assert [m.topic for _, m in rest] == ["t/3", "u/3", "t/4", "u/4", "t/5", "u/5"]
    from_disk.close()
    outbox.close()


def test_outbox_pending_reads_back_a_tail_grown_past_the_memory(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "site.sqlite")
    assert outbox.pending(0, 10) == []
    many = [Outgoing("t", str(i).encode()) for i in range(MEMORY_ROWS + 1)]
    outbox.enqueue_many([(many, None)])
    outbox.enqueue_many([([Outgoing("t", b"last")], None)])
    rows = outbox.pending(0, 2 * MEMORY_ROWS)
    assert [m.payload for _, m in rows] == [m.payload for m in many] + [b"last"]
    assert [i for i, _ in rows] == list(range(1, MEMORY_ROWS + 3))
    outbox.close()
