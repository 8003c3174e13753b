from __future__ import annotations

from pathlib import Path

from gateway.core import Outgoing
from gateway.outbox import Outbox


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
