"""Take what is waiting in a queue as one batch: how both services turn messages that
arrive one by one into one durable write each."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")


def take_batch(
    source: queue.Queue[T], max_items: int, linger_s: float = 0.0, wait_s: float = 0.2
) -> list[T]:
    """Wait up to ``wait_s`` for a first item, then keep taking until ``max_items``, or
    until nothing more arrives within ``linger_s`` of the first (0: only what is there)."""
    try:
        batch = [source.get(timeout=wait_s)]
    except queue.Empty:
        return []
    deadline = time.monotonic() + linger_s
    while len(batch) < max_items:
        remaining = deadline - time.monotonic()
        try:
            batch.append(source.get(timeout=remaining) if remaining > 0 else source.get_nowait())
        except queue.Empty:
            break
    return batch
