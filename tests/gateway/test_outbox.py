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
