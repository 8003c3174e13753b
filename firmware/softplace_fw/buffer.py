"""Bounded offline buffer: RTC-memory ring, then a size-capped flash file.

Readings are kept as encoded JSON lines (bytes, no newline inside). While the broker
is unreachable:

1. new readings go into a ring bounded in bytes, sized to fit the RTC user memory, so a
   watchdog or soft reset does not lose them (``snapshot``/``restore``);
2. when the ring is full, its oldest reading moves to an append-only flash file;
3. when the file would pass its cap, its oldest lines are dropped (down to 3/4 of the
   cap, so flash is not rewritten on every reading) and counted in ``dropped``.

Replay is oldest first, flash then ring, with the readings' original timestamps.
``(device, boot, seq)`` makes a reading sent twice (reset during replay) harmless.
"""

try:
    import os
except ImportError:  # pragma: no cover - every supported port has os
    os = None  # type: ignore[assignment]

NL = b"\n"


class Ring:
    """FIFO bounded by item count and total bytes; ``push`` returns what it evicted."""

    def __init__(self, max_bytes: int, max_items: int = 64) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._items = []  # type: list[bytes]
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        return self._bytes

    def push(self, item: bytes) -> list:
        if len(item) + 1 > self.max_bytes:
            return [item]
        self._items.append(item)
        self._bytes += len(item) + 1
        evicted = []
        while self._bytes > self.max_bytes or len(self._items) > self.max_items:
            evicted.append(self.pop())
        return evicted

    def peek(self):
        return self._items[0] if self._items else None

    def pop(self) -> bytes:
        item = self._items.pop(0)
        self._bytes -= len(item) + 1
        return item

    def snapshot(self) -> bytes:
        """All items, newline-separated: fits in ``max_bytes`` by construction."""
        return b"".join(item + NL for item in self._items)

    def restore(self, data) -> int:
        """Reload a snapshot (e.g. from RTC memory); ignores a torn tail. Returns items."""
        n = 0
        for line in bytes(data).split(NL)[:-1]:
            if line:
                self.push(line)
                n += 1
        return n


class FlashSpool:
    """Append-only JSON-lines file with a byte cap; replays oldest first."""

    def __init__(self, path: str, max_bytes: int, fs=None, opener=None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._fs = fs if fs is not None else os
        self._open = opener if opener is not None else open
        self.dropped = 0
        self._offset = 0  # bytes of the file already replayed
        self._size = self._stat_size()

    def _stat_size(self) -> int:
        try:
            return self._fs.stat(self.path)[6]
        except OSError:
            return 0

    def __len__(self) -> int:
        return 0 if self._size <= self._offset else 1  # "something pending", cheaply

    @property
    def size(self) -> int:
        return self._size - self._offset

    def append(self, item: bytes) -> None:
        if self.max_bytes <= 0 or len(item) + 1 > self.max_bytes:
            self.dropped += 1
            return
        if self._size - self._offset + len(item) + 1 > self.max_bytes:
            self._compact(self.max_bytes * 3 // 4 - len(item) - 1)
        try:
            with self._open(self.path, "ab") as f:
                f.write(item + NL)
        except OSError:  # flash full or worn: count it, never crash the sensing loop
            self.dropped += 1
            self._size = self._stat_size()
            return
        self._size += len(item) + 1

    def peek(self):
        if self._size <= self._offset:
            return None
        with self._open(self.path, "rb") as f:
            f.seek(self._offset)
            line = f.readline()
        if not line.endswith(NL):  # torn write at power loss: drop the fragment
            self.dropped += 1
            self.clear()
            return None
        return line[:-1]

    def pop(self) -> None:
        line = self.peek()
        if line is None:
            return
        self._offset += len(line) + 1
        if self._offset >= self._size:
            self.clear()

    def clear(self) -> None:
        try:
            self._fs.remove(self.path)
        except OSError:
            pass
        self._offset = 0
        self._size = 0

    def _compact(self, budget: int) -> None:
        """Keep the newest lines that fit in ``budget`` bytes; count the rest as dropped."""
        lines = []
        with self._open(self.path, "rb") as f:
            f.seek(self._offset)
            for line in f:
                if line.endswith(NL):
                    lines.append(line)
        total = 0
        keep = 0
        for line in reversed(lines):
            if total + len(line) > budget:
                break
            total += len(line)
            keep += 1
        self.dropped += len(lines) - keep
        tmp = self.path + ".tmp"
        with self._open(tmp, "wb") as f:
            for line in lines[len(lines) - keep:]:
                f.write(line)
        self._fs.rename(tmp, self.path)
        self._offset = 0
        self._size = total


class OfflineBuffer:
    """Ring (RTC memory) in front of an optional flash spool; drops are counted."""

    def __init__(self, ring: Ring, spool=None) -> None:
        self.ring = ring
        self.spool = spool
        self._ring_dropped = 0

    @property
    def dropped(self) -> int:
        return self._ring_dropped + (self.spool.dropped if self.spool is not None else 0)

    def push(self, item: bytes) -> None:
        for old in self.ring.push(item):
            if self.spool is None:
                self._ring_dropped += 1
            else:
                self.spool.append(old)

    def pending(self) -> bool:
        return bool(len(self.ring)) or (self.spool is not None and bool(len(self.spool)))

    def peek(self):
        """The oldest reading waiting, or None."""
        if self.spool is not None:
            item = self.spool.peek()
            if item is not None:
                return item
        return self.ring.peek()

    def pop(self) -> None:
        """Forget the reading ``peek`` returned (call after the broker acknowledged it)."""
        if self.spool is not None and self.spool.peek() is not None:
            self.spool.pop()
        elif len(self.ring):
            self.ring.pop()
