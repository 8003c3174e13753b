"""Recognise redelivered readings by ``(device, boot, seq)``, in bounded memory."""

from __future__ import annotations

from collections import OrderedDict


class Deduper:
    """Remembers the last ``keys_per_device`` readings of each device.

    A device replaying its offline buffer after a reboot sends readings of an earlier
    boot, so keys are ``(boot, seq)`` pairs, not a high-water mark.
    """

    def __init__(self, keys_per_device: int = 4096) -> None:
        self.keys_per_device = keys_per_device
        self._seen: dict[str, OrderedDict[tuple[int, int], None]] = {}

    def seen(self, device: str, boot: int, seq: int) -> bool:
        return (boot, seq) in self._seen.get(device, ())

    def remember(self, device: str, boot: int, seq: int) -> None:
        keys = self._seen.get(device)
        if keys is None:
            keys = self._seen[device] = OrderedDict()
        key = (boot, seq)
        if key in keys:
            keys.move_to_end(key)
            return
        keys[key] = None
        while len(keys) > self.keys_per_device:
            keys.popitem(last=False)

    def items(self) -> list[tuple[str, int, int]]:
        return [(d, b, s) for d, keys in self._seen.items() for (b, s) in keys]


class AckTracker:
    """Which ``(boot, seq)`` the gateway may acknowledge to one device.

    An ack covers every reading up to its pair, so it must not run past a reading that
    never reached us: when the broker loses our subscription (a crash before its
    autosave) the device's re-sent tail can reach us with a hole, and acking the highest
    pair would make the device forget the readings in the hole. Within a boot ``seq``
    counts up by one, so the ack advances only through consecutive pairs. A reading that
    starts a later boot at seq 0 moves it on at once (a reboot); any other jump (a device
    first seen mid-boot, or a reading the device itself no longer has) is taken once the
    next pair has waited ``gap_wait_s``: by then the device has re-sent what it kept.
    """

    def __init__(self, gap_wait_s: float, bound: int = 4096) -> None:
        self.gap_wait_s = gap_wait_s
        self.bound = bound
        self.acked: tuple[int, int] | None = None
        self._waiting: dict[tuple[int, int], float] = {}  # above ``acked``: first seen at

    def reached(self, boot: int, seq: int, now: float) -> tuple[int, int] | None:
        """Record a reading that is being kept; the pair to acknowledge now, if any."""
        key = (boot, seq)
        acked = self.acked
        if not self._waiting and acked is not None and (
                key == (acked[0], acked[1] + 1) or (boot > acked[0] and seq == 0)):
            self.acked = key  # the next pair, nothing waiting: what _advance would do
            return key
        if acked is None or key > acked:
            self._waiting.setdefault(key, now)
        self._advance(now)
        return self.acked

    def _advance(self, now: float) -> None:
        while self._waiting:
            lowest = min(self._waiting)
            since = self._waiting[lowest]
            if self.acked is None:
                follows = lowest[1] == 0
            else:
                boot, seq = self.acked
                follows = lowest == (boot, seq + 1) or (lowest[0] > boot and lowest[1] == 0)
            overdue = now - since >= self.gap_wait_s or len(self._waiting) > self.bound
            if not (follows or overdue):
                return
            del self._waiting[lowest]
            self.acked = lowest
