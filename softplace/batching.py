"""Take what is waiting in a queue as one batch: how both services turn messages that
arrive one by one into one durable write each."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")
# while lingering, how often to look whether a full batch is already waiting
LINGER_POLL_S = 0.005


def take_batch(
    source: queue.Queue[T], max_items: int, linger_s: float = 0.0, wait_s: float = 0.2
) -> list[T]:
    """Wait up to ``wait_s`` for a first item, then let more arrive for ``linger_s`` (0:
    only what is there) unless ``max_items`` are waiting already, and take up to
    ``max_items``.

    The linger sleeps and then drains: waiting on the queue item by item would wake this
    thread (and hand the GIL over) once per item of a live stream."""
    try:
        batch = [source.get(timeout=wait_s)]
    except queue.Empty:
        return []
    if linger_s > 0:
        deadline = time.monotonic() + linger_s
        while source.qsize() < max_items - 1:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(remaining, LINGER_POLL_S))
    while len(batch) < max_items:
        try:
            batch.append(source.get_nowait())
        except queue.Empty:
            break
    return batch
