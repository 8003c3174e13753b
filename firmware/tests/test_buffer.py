"""Spool: byte-bounded ring, flash spill with a cap, drop counting, replay order, acks."""

from mpytest import eq, ok, scratch
from softplace_fw.buffer import CHUNK, FlashSpool, OfflineBuffer, Ring


def _item(i: int, boot: int = 0) -> bytes:
    return '{{"boot": {}, "seq": {}, "ts": {}}}'.format(boot, i, 1730000000 + i).encode()


def _seq(item) -> int:
    return int(item.split(b'"seq": ')[1].split(b",")[0])


def _send_all(buf) -> list:
    """What the outbox would publish now (each one PUBACKed), as seqs."""
    out = []
    while True:
        item = buf.next_unsent()
        if item is None:
            return out
        out.append(_seq(item))
        buf.mark_sent()


def _drain(buf) -> list:
    out = []
    while buf.pending():
        out.append(buf.peek())
        buf.pop()
    return out


def test_ring_bounded_by_bytes_and_items():
    ring = Ring(max_bytes=150, max_items=3)
    evicted = []
    for i in range(5):
        evicted.extend(ring.push(_item(i)))
    eq(len(ring), 3)
    eq(evicted, [_item(0), _item(1)])
    ok(ring.size <= 150)
    eq(Ring(10).push(b"x" * 20), [b"x" * 20], "an item larger than the ring is refused")


def test_ring_snapshot_restore_survives_torn_tail():
    ring = Ring(max_bytes=200)
    for i in range(4):
        ring.push(_item(i))
    snap = ring.snapshot()
    ok(len(snap) <= 200)
    again = Ring(max_bytes=200)
    eq(again.restore(snap + b'{"seq": 9'), 4, "a half-written line is ignored")
    eq(again.pop(), _item(0))


def test_ring_only_drops_oldest_and_counts():
    buf = OfflineBuffer(Ring(max_bytes=1000, max_items=4))
    for i in range(10):
        buf.push(_item(i))
    eq(buf.dropped, 6)
    eq(_drain(buf), [_item(i) for i in range(6, 10)])


def test_spill_to_flash_replays_oldest_first():
    spool = FlashSpool(scratch("spool"), max_bytes=4096)
    buf = OfflineBuffer(Ring(max_bytes=1000, max_items=3), spool)
    for i in range(20):
        buf.push(_item(i))
    eq(buf.dropped, 0)
    eq(_drain(buf), [_item(i) for i in range(20)], "original order and content")
    eq(spool.size, 0)
    ok(not buf.pending())


def test_flash_cap_drops_oldest_and_counts():
    spool = FlashSpool(scratch("capped"), max_bytes=300)
    buf = OfflineBuffer(Ring(max_bytes=1000, max_items=2), spool)
    for i in range(40):
        buf.push(_item(i))
    ok(spool.size <= 300, "flash stays under its cap")
    ok(buf.dropped > 0)
    got = _drain(buf)
    eq(len(got) + buf.dropped, 40, "every reading is either replayed or counted as dropped")
    eq(got[-1], _item(39))
    seqs = [_seq(x) for x in got]
    eq(seqs, sorted(seqs), "still oldest first")


def test_spool_survives_reboot():
    path = scratch("reboot")
    spool = FlashSpool(path, max_bytes=4096)
    for i in range(3):
        spool.append(_item(i))
    again = FlashSpool(path, max_bytes=4096)
    eq(again.peek(), _item(0))
    again.pop()
    eq(again.peek(), _item(1))


def test_torn_flash_line_is_dropped():
    path = scratch("torn")
    with open(path, "wb") as f:
        f.write(b'{"seq": 1')
    spool = FlashSpool(path, max_bytes=4096)
    eq(spool.peek(), None)
    eq(spool.dropped, 1)


def test_torn_flash_line_does_not_spoil_the_next_append():
    path = scratch("torn2")
    with open(path, "wb") as f:
        f.write(_item(0) + b"\n" + b'{"boot": 0, "se')
    spool = FlashSpool(path, max_bytes=4096)
    spool.append(_item(2))
    got = []
    while spool.peek() is not None:
        got.append(spool.peek())
        spool.pop()
    eq(got, [_item(0), _item(2)])
    eq(spool.dropped, 1)


class _FullFlash:
    """An ``open`` whose writes fail like a full flash file system."""

    def __call__(self, path, mode):
        raise OSError(28)


def test_full_flash_counts_instead_of_crashing():
    spool = FlashSpool(scratch("full"), max_bytes=4096, opener=_FullFlash())
    buf = OfflineBuffer(Ring(max_bytes=1000, max_items=1), spool)
    for i in range(3):
        buf.push(_item(i))
    eq(buf.dropped, 2)
    eq(buf.peek(), _item(2))


def test_disabled_flash_drops():
    spool = FlashSpool(scratch("off"), max_bytes=0)
    spool.append(_item(0))
    eq(spool.dropped, 1)


def _acked_buffer(name, flash=4096, ring_items=3):
    return OfflineBuffer(Ring(max_bytes=1000, max_items=ring_items),
                         FlashSpool(scratch(name), max_bytes=flash))


def test_ack_keeps_readings_until_covered():
    buf = _acked_buffer("ack")
    for i in range(10):
        buf.push(_item(i))
    eq(_send_all(buf), list(range(10)), "spool then ring, oldest first")
    ok(buf.in_flight())
    eq(_send_all(buf), [], "sent once until rewound")
    eq(buf.ack(0, 3), 4)
    eq(_seq(buf.peek()), 4, "the ack forgot 0..3 and kept the rest")
    buf.rewind()
    eq(_send_all(buf), list(range(4, 10)), "the unacknowledged tail again, in order")
    eq(buf.ack(0, 9), 6)
    ok(not buf.pending() and not buf.in_flight())
    eq(buf.dropped, 0)


def test_ack_compares_boot_first():
    buf = _acked_buffer("boots", ring_items=2)
    for boot, seq in ((4, 7), (4, 8), (5, 0), (5, 1)):
        buf.push(_item(seq, boot))
    eq(buf.ack(4, 100), 2, "boot 4 up to seq 100 covers (4, 7) and (4, 8), not boot 5")
    eq(buf.ack(5, 0), 1)
    eq(_seq(buf.peek()), 1)
    eq(buf.ack(3, 999), 0, "an old ack covers nothing newer")


def test_new_readings_go_out_while_older_wait_for_ack():
    buf = _acked_buffer("interleave", ring_items=2)
    buf.push(_item(0))
    buf.push(_item(1))
    eq(_send_all(buf), [0, 1])
    for i in range(2, 6):  # the sent ones spill to flash while unacknowledged
        buf.push(_item(i))
    eq(_send_all(buf), [2, 3, 4, 5], "only the new ones; 0 and 1 wait for their ack")
    buf.rewind()
    eq(_send_all(buf), [0, 1, 2, 3, 4, 5])
    eq(buf.ack(0, 5), 6)
    ok(not buf.pending())


def test_compaction_keeps_send_cursor_and_counts():
    spool = FlashSpool(scratch("compact"), max_bytes=600)
    buf = OfflineBuffer(Ring(max_bytes=1000, max_items=1), spool)
    n = 40
    for i in range(n):
        buf.push(_item(i))
        if i == 30:
            eq(_send_all(buf)[-1], 30)  # 30 in the ring, the rest in flash; none acked
    sent = _send_all(buf)
    ok(spool.size <= 600)
    buf.rewind()
    kept = _send_all(buf)
    eq(kept[-1], n - 1)
    eq(kept, sorted(kept))
    eq(len(kept) + buf.dropped, n, "every reading is kept or counted as dropped")
    ok(kept[0] <= 30, "some readings sent before compaction are still kept")
    eq(sent, [k for k in kept if k > 30], "after compaction only the new ones go out")


def test_compaction_streams_in_chunks():
    spool = FlashSpool(scratch("stream"), max_bytes=8 * CHUNK)
    big = b'{"boot": 0, "seq": %d, "pad": "' + b"x" * 100 + b'"}'
    for i in range(200):
        spool.append(big % i)
    ok(spool.size <= 8 * CHUNK)
    first = spool.peek()
    ok(first is not None and first.startswith(b'{"boot": 0, "seq": '))
    eq(spool.dropped + _count_lines(spool), 200)


def _count_lines(spool) -> int:
    n = 0
    while spool.peek() is not None:
        spool.pop()
        n += 1
    return n


def test_drop_counters_survive_reset():
    buf = OfflineBuffer(Ring(max_bytes=1000, max_items=2))
    for i in range(5):
        buf.push(_item(i))
    eq(buf.dropped, 3)
    buf.reported = 3
    snap = buf.snapshot()
    again = OfflineBuffer(Ring(max_bytes=1000, max_items=2))
    eq(again.restore(snap), 2)
    eq((again.dropped, again.reported), (3, 3))
    again.push(_item(5))
    eq(again.dropped, 4)
    eq(_seq(again.next_unsent()), 4, "restored readings are sent again after a reset")


def test_snapshot_fits_rtc_memory():
    from softplace_fw.buffer import HEADER_BYTES

    ring = Ring(max_bytes=2048 - HEADER_BYTES)
    buf = OfflineBuffer(ring)
    for i in range(200):
        buf.push(_item(i + 10 ** 9, boot=10 ** 9))
    buf.reported = buf.dropped
    ok(len(buf.snapshot()) <= 2048, len(buf.snapshot()))
