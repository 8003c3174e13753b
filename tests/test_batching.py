"""take_batch: what a consumer's worker takes from its queue as one batch."""

from __future__ import annotations

import queue
import threading
import time

from softplace.batching import take_batch

BOUND_S = 5.0  # far above any wait here: a hang fails, never a slow machine


def filled(n: int) -> queue.Queue[int]:
    source: queue.Queue[int] = queue.Queue()
    for i in range(n):
        source.put(i)
    return source


def test_take_batch_without_linger_takes_only_what_waits() -> None:
    source = filled(3)
    assert take_batch(source, 10) == [0, 1, 2]
    assert take_batch(source, 10, wait_s=0.01) == []


def test_take_batch_stops_at_max_items_and_leaves_the_rest() -> None:
    source = filled(7)
    assert take_batch(source, 5, linger_s=BOUND_S) == [0, 1, 2, 3, 4]
    assert source.qsize() == 2


def test_take_batch_lingers_for_what_arrives_and_returns_once_full() -> None:
    source: queue.Queue[int] = queue.Queue()
    source.put(0)

    def feed() -> None:
        for i in range(1, 6):
            time.sleep(0.01)
            source.put(i)

    feeder = threading.Thread(target=feed)
    started = time.monotonic()
    feeder.start()
    batch = take_batch(source, 6, linger_s=BOUND_S)
    feeder.join(BOUND_S)
    assert batch == [0, 1, 2, 3, 4, 5]  # all of them, in order, in one batch
    assert time.monotonic() - started < BOUND_S  # full before the linger ran out


def test_take_batch_linger_ends_at_its_deadline() -> None:
    source = filled(1)
    started = time.monotonic()
    assert take_batch(source, 10, linger_s=0.05) == [0]
    assert 0.05 <= time.monotonic() - started < BOUND_S
