"""Take what is waiting in a queue as one batch: how both services turn messages that
arrive one by one into one durable write each."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
# while lingering, how often to look whether a full batch is already waiting
LINGER_POLL_S = 0.005


class BatchQueue(Generic[T]):
    """A bounded queue handed over in batches: the producer puts what one read gave in one
    call (one lock, one wake-up), the consumer takes a batch (``take``).
    Nothing is ever held beyond ``bound``: a producer with more waits for room."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._items: deque[T] = deque()
        lock = threading.Lock()
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)

    def __len__(self) -> int:
        return len(self._items)

    def put_many(self, items: Sequence[T], stopping: Callable[[], bool],
                 counted: Callable[[int], None], poll_s: float) -> int:
        """Put ``items`` in order, waiting (``poll_s`` at a time) while the queue is full,
        until all are in or ``stopping()``; ``counted(n)`` runs under the queue's lock as n
        go in. How many went in."""
        done = 0
        with self._not_full:
            while done < len(items):
                room = self.bound - len(self._items)
                if room <= 0:
                    if stopping():
                        break
                    self._not_full.wait(poll_s)
                    continue
                part = items[done:done + room]
                self._items.extend(part)
                done += len(part)
                counted(len(part))
                self._not_empty.notify()
        return done

    def take(self, max_items: int, linger_s: float = 0.0, wait_s: float = 0.2,
             linger_for: Callable[[T], float] | None = None) -> list[T]:
        """Wait up to ``wait_s`` for a first item, let more arrive for ``linger_s`` (or what
        ``linger_for`` says for that first item) unless ``max_items`` wait already, take up
        to ``max_items``.

        The linger sleeps and then drains: waiting on the queue item by item would wake this
        thread (and hand the GIL over) once per item of a live stream."""
        items = self._items
        if not items:
            with self._not_empty:
                if not items:
                    self._not_empty.wait(wait_s)
                if not items:
                    return []
        if linger_for is not None:
            linger_s = linger_for(items[0])
        if linger_s > 0:
            deadline = time.monotonic() + linger_s
            while len(items) < max_items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(remaining, LINGER_POLL_S))
        with self._not_full:
            if len(items) <= max_items:
                batch = list(items)
                items.clear()
            else:
                batch = [items.popleft() for _ in range(max_items)]
            self._not_full.notify()
        return batch
