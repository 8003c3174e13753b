"""Bounded spool: RTC-memory ring, then a size-capped flash file, kept until acknowledged.

Readings are kept as encoded JSON lines (bytes, no newline inside), oldest first, flash
then ring:

1. new readings go into a ring bounded in bytes, sized to fit the RTC user memory, so a
   watchdog or soft reset does not lose them (``snapshot``/``restore``, which also keep
   the drop counters);
2. when the ring is full, its oldest reading moves to an append-only flash file;
3. when the file would pass its cap, its oldest lines are dropped (down to 3/4 of the
   cap, so flash is not rewritten on every reading) and counted in ``dropped``.
   Compaction streams the file in ``CHUNK``-byte pieces: it never holds the file in RAM.

Delivery follows the gateway acknowledgement protocol: ``next_unsent``/``mark_sent``
walk a send cursor forward (one step per PUBACK), ``ack(boot, seq)`` forgets every
reading with ``(boot, seq) <= (B, S)`` and ``rewind`` moves the cursor back to the oldest
unacknowledged reading, so the whole tail is sent again after a reconnect or when no ack
came for a while. ``(device, boot, seq)`` makes a reading sent twice harmless.
``peek``/``pop`` forget on PUBACK instead (for a gateway that does not acknowledge).
"""

import json

try:
    import os
except ImportError:  # pragma: no cover - every supported port has os
    os = None  # type: ignore[assignment]

NL = b"\n"
CHUNK = 512  # bytes copied at a time during compaction
HEADER = b"#"  # first line of an RTC snapshot: "#<dropped>,<reported>"
HEADER_BYTES = 24  # room the snapshot header needs next to the ring


def key_of(item):
    """``(boot, seq)`` of an encoded reading, or None when it is not one."""
    try:
        message = json.loads(item)
        seq = message["seq"]
        boot = message.get("boot", 0)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(seq, int) or not isinstance(boot, int):
        return None
    return boot, seq


def covered(item, boot: int, seq: int) -> bool:
    """True when an ack for ``(boot, seq)`` covers ``item`` (unparseable items too)."""
    key = key_of(item)
    return key is None or key <= (boot, seq)


class Ring:
    """FIFO bounded by item count and total bytes; ``push`` returns what it evicted.

    ``sent`` counts the items at the head that were sent and wait for an ack;
    ``evicted_sent`` says how many of the last ``push``'s evicted items were among them.
    """

    def __init__(self, max_bytes: int, max_items: int = 64) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._items = []  # type: list[bytes]
        self._bytes = 0
        self.sent = 0
        self.evicted_sent = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        return self._bytes

    def push(self, item: bytes) -> list:
        self.evicted_sent = 0
        if len(item) + 1 > self.max_bytes:
            return [item]
        self._items.append(item)
        self._bytes += len(item) + 1
        evicted = []
        while self._bytes > self.max_bytes or len(self._items) > self.max_items:
            if self.sent:
                self.evicted_sent += 1
            evicted.append(self.pop())
        return evicted

    def peek(self):
        return self._items[0] if self._items else None

    def pop(self) -> bytes:
        item = self._items.pop(0)
        self._bytes -= len(item) + 1
        if self.sent:
            self.sent -= 1
        return item

    def next_unsent(self):
        return self._items[self.sent] if self.sent < len(self._items) else None

    def mark_sent(self) -> None:
        if self.sent < len(self._items):
            self.sent += 1

    def ack(self, boot: int, seq: int) -> int:
        n = 0
        while self._items and covered(self._items[0], boot, seq):
            self.pop()
            n += 1
        return n

    def snapshot(self) -> bytes:
        """All items, newline-separated: fits in ``max_bytes`` by construction."""
        return b"".join(item + NL for item in self._items)

    def restore(self, data) -> int:
        """Reload a snapshot (e.g. from RTC memory); ignores a torn tail. Returns items."""
        n = 0
        for line in bytes(data).split(NL)[:-1]:
            if line and not line.startswith(HEADER):
                self.push(line)
                n += 1
        self.sent = 0
        return n


class FlashSpool:
    """Append-only JSON-lines file with a byte cap; replays oldest first.

    Byte offsets into the file: ``_offset`` is the oldest reading kept, ``_send`` the
    next one to send (``_offset <= _send <= _size``).
    """

    def __init__(self, path: str, max_bytes: int, fs=None, opener=None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._fs = fs if fs is not None else os
        self._open = opener if opener is not None else open
        self.dropped = 0
        self._offset = 0
        self._size = self._stat_size()
        self._send = 0
        self._seal_torn_tail()

    def _stat_size(self) -> int:
        try:
            return self._fs.stat(self.path)[6]
        except OSError:
            return 0

    def _seal_torn_tail(self) -> None:
        """A write cut by power loss leaves a fragment: end it so appends start clean."""
        if self._size <= 0:
            return
        try:
            with self._open(self.path, "rb") as f:
                f.seek(self._size - 1)
                last = f.read(1)
            if last != NL:
                with self._open(self.path, "ab") as f:
                    f.write(NL)
                self._size += 1
        except OSError:
            self.dropped += 1
            self.clear()

    def __len__(self) -> int:
        return 0 if self._size <= self._offset else 1  # "something pending", cheaply

    @property
    def size(self) -> int:
        return self._size - self._offset

    def append(self, item: bytes, sent: bool = False) -> None:
        if self.max_bytes <= 0 or len(item) + 1 > self.max_bytes:
            self.dropped += 1
            return
        if self._size - self._offset + len(item) + 1 > self.max_bytes:
            self._compact(self.max_bytes * 3 // 4 - len(item) - 1)
        all_sent = self._send >= self._size
        try:
            with self._open(self.path, "ab") as f:
                f.write(item + NL)
        except OSError:  # flash full or worn: count it, never crash the sensing loop
            self.dropped += 1
            self._size = self._stat_size()
            self._send = min(max(self._send, self._offset), self._size)
            return
        self._size += len(item) + 1
        if sent and all_sent:
            self._send = self._size

    def _line_at(self, offset: int):
        """The complete line at ``offset`` (with its newline), or None."""
        if offset >= self._size:
            return None
        with self._open(self.path, "rb") as f:
            f.seek(offset)
            line = f.readline()
        return line if line.endswith(NL) else None

    def _skip_invalid_head(self) -> None:
        while self._offset < self._size:
            line = self._line_at(self._offset)
            if line is None:
                self.dropped += 1
                self.clear()
                return
            if key_of(line[:-1]) is not None:
                return
            self.dropped += 1
            self._advance_head(len(line))

    def _advance_head(self, n: int) -> None:
        self._offset += n
        self._send = max(self._send, self._offset)
        if self._offset >= self._size:
            self.clear()

    def peek(self):
        self._skip_invalid_head()
        line = self._line_at(self._offset)
        return None if line is None else line[:-1]

    def pop(self) -> None:
        line = self.peek()
        if line is not None:
            self._advance_head(len(line) + 1)

    def next_unsent(self):
        while self._send < self._size:
            line = self._line_at(self._send)
            if line is None:
                self._send = self._size
                return None
            if key_of(line[:-1]) is not None:
                return line[:-1]
            self._send += len(line)  # not a reading: never sent, dropped at the head
        return None

    def mark_sent(self) -> None:
        line = self._line_at(self._send)
        if line is not None:
            self._send += len(line)

    def rewind(self) -> None:
        self._send = self._offset

    def in_flight(self) -> bool:
        return self._send > self._offset

    def ack(self, boot: int, seq: int) -> int:
        """Forget the oldest readings an ack for ``(boot, seq)`` covers; returns how many."""
        if self._offset >= self._size:
            return 0
        n = 0
        offset = self._offset
        with self._open(self.path, "rb") as f:
            f.seek(offset)
            while offset < self._size:
                line = f.readline()
                if not line.endswith(NL) or not covered(line[:-1], boot, seq):
                    break
                if key_of(line[:-1]) is None:
                    self.dropped += 1
                else:
                    n += 1
                offset += len(line)
        if offset > self._offset:
            self._advance_head(offset - self._offset)
        return n

    def clear(self) -> None:
        try:
            self._fs.remove(self.path)
        except OSError:
            pass
        self._offset = 0
        self._size = 0
        self._send = 0

    def _compact(self, budget: int) -> None:
        """Keep the newest lines that fit in ``budget`` bytes; count the rest as dropped.

        Streams through one ``CHUNK``-byte buffer: whole lines are skipped at the head
        (newlines counted), the rest is copied to a new file, so RAM use is fixed,
        whatever the file's size, and nothing is allocated per line.
        """
        excess = self._size - self._offset - max(budget, 0)
        target = self._offset + excess - 1  # the line holding this byte is the last dropped
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        pos = self._offset
        cut = self._offset if excess <= 0 else -1
        dropped = 0
        kept = 0
        tmp = self.path + ".tmp"
        try:
            with self._open(self.path, "rb") as src, self._open(tmp, "wb") as dst:
                src.seek(pos)
                while True:
                    n = src.readinto(view)
                    if not n:
                        break
                    first = 0
                    if cut < 0:
                        i = _newline(buf, max(target - pos, 0), n)
                        end = n if i < 0 else i + 1
                        dropped += _newlines(buf, 0, end)
                        if i < 0:
                            pos += n
                            continue
                        cut = pos + end
                        first = end
                    if first < n:
                        dst.write(view[first:n])
                        kept += n - first
                    pos += n
            self._fs.rename(tmp, self.path)
        except OSError:  # flash full: keep what is there; the append will count the loss
            return
        self.dropped += dropped
        self._send = max(self._send - max(cut, self._offset), 0) if cut >= 0 else 0
        self._offset = 0
        self._size = kept


def _newline(buf, start: int, end: int) -> int:
    """Index of the first newline in ``buf[start:end]``, or -1 (no slice, no allocation)."""
    for i in range(start, end):
        if buf[i] == 10:
            return i
    return -1


def _newlines(buf, start: int, end: int) -> int:
    n = 0
    for i in range(start, end):
        if buf[i] == 10:
            n += 1
    return n


class OfflineBuffer:
    """Ring (RTC memory) in front of an optional flash spool; drops are counted.

    ``dropped`` survives a reset through ``snapshot``/``restore``; ``reported`` is how
    many of them a status message has already announced.
    """

    def __init__(self, ring: Ring, spool=None) -> None:
        self.ring = ring
        self.spool = spool
        self._ring_dropped = 0
        self._restored_dropped = 0
        self.reported = 0

    @property
    def dropped(self) -> int:
        spool = self.spool.dropped if self.spool is not None else 0
        return self._restored_dropped + self._ring_dropped + spool

    def push(self, item: bytes) -> None:
        evicted = self.ring.push(item)
        sent = self.ring.evicted_sent
        for i, old in enumerate(evicted):
            if self.spool is None:
                self._ring_dropped += 1
            else:
                self.spool.append(old, sent=i < sent)

    def pending(self) -> bool:
        return bool(len(self.ring)) or (self.spool is not None and bool(len(self.spool)))

    def peek(self):
        """The oldest reading kept, or None."""
        if self.spool is not None:
            item = self.spool.peek()
            if item is not None:
                return item
        return self.ring.peek()

    def pop(self) -> None:
        """Forget the reading ``peek`` returned."""
        if self.spool is not None and self.spool.peek() is not None:
            self.spool.pop()
        elif len(self.ring):
            self.ring.pop()

    def next_unsent(self):
        """The oldest reading not sent since the last ``rewind``, or None."""
        if self.spool is not None:
            item = self.spool.next_unsent()
            if item is not None:
                return item
        return self.ring.next_unsent()

    def mark_sent(self) -> None:
        """The broker acknowledged (PUBACK) the reading ``next_unsent`` returned."""
        if self.spool is not None and self.spool.next_unsent() is not None:
            self.spool.mark_sent()
        else:
            self.ring.mark_sent()

    def in_flight(self) -> bool:
        """Some reading was sent and no ack has covered it yet."""
        return self.ring.sent > 0 or (self.spool is not None and self.spool.in_flight())

    def ack(self, boot: int, seq: int) -> int:
        """Forget every reading with ``(boot, seq)`` up to the pair; returns how many."""
        n = self.spool.ack(boot, seq) if self.spool is not None else 0
        if self.spool is None or not len(self.spool):
            n += self.ring.ack(boot, seq)
        return n

    def rewind(self) -> None:
        """Send the whole unacknowledged tail again, oldest first."""
        if self.spool is not None:
            self.spool.rewind()
        self.ring.sent = 0

    def snapshot(self) -> bytes:
        """Drop counters and the ring, for RTC memory (at most ring bytes + HEADER_BYTES)."""
        header = HEADER + "{},{}".format(self.dropped, self.reported).encode() + NL
        return header + self.ring.snapshot()

    def restore(self, data) -> int:
        """Reload a ``snapshot``; returns how many readings came back."""
        data = bytes(data)
        if data.startswith(HEADER):
            end = data.find(NL)
            try:
                dropped, reported = data[1:end].split(b",")
                self._restored_dropped = int(dropped)
                self.reported = int(reported)
            except ValueError:
                pass
        return self.ring.restore(data)
