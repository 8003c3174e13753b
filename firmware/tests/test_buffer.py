"""Offline buffer: byte-bounded ring, flash spill with a cap, drop counting, replay order."""

from mpytest import eq, ok, scratch
from softplace_fw.buffer import FlashSpool, OfflineBuffer, Ring


def _item(i: int) -> bytes:
    return '{{"seq": {}, "ts": {}}}'.format(i, 1730000000 + i).encode()


def _drain(buf) -> list:
    out = []
    while buf.pending():
        out.append(buf.peek())
        buf.pop()
    return out


def test_ring_bounded_by_bytes_and_items():
    ring = Ring(max_bytes=100, max_items=3)
    evicted = []
    for i in range(5):
        evicted.extend(ring.push(_item(i)))
    eq(len(ring), 3)
    eq(evicted, [_item(0), _item(1)])
    ok(ring.size <= 100)
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
    seqs = [int(x.split(b":")[1].split(b",")[0]) for x in got]
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
