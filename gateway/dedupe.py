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
        keys = self._seen.setdefault(device, OrderedDict())
        keys[(boot, seq)] = None
        keys.move_to_end((boot, seq))
        while len(keys) > self.keys_per_device:
            keys.popitem(last=False)

    def items(self) -> list[tuple[str, int, int]]:
        return [(d, b, s) for d, keys in self._seen.items() for (b, s) in keys]
