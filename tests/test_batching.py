"""BatchQueue: what a consumer's worker takes from its queue as one batch."""

from __future__ import annotations

import threading
import time

from softplace.batching import BatchQueue

BOUND_S = 5.0  # far above any wait here: a hang fails, never a slow machine


def never() -> bool:
    return False


def test_batch_queue_take_lingers_for_what_arrives_and_returns_once_full() -> None:
    source: BatchQueue[int] = BatchQueue(bound=10)
    source.put_many([0], never, lambda n: None, poll_s=0.01)

    def feed() -> None:
        for i in range(1, 6):
            time.sleep(0.01)
            source.put_many([i], never, lambda n: None, poll_s=0.01)

    feeder = threading.Thread(target=feed)
    started = time.monotonic()
    feeder.start()
    batch = source.take(6, linger_s=BOUND_S)
    feeder.join(BOUND_S)
    assert batch == [0, 1, 2, 3, 4, 5]  # all of them, in order, in one batch
    assert time.monotonic() - started < BOUND_S  # full before the linger ran out


def test_batch_queue_holds_at_most_its_bound_and_counts_what_goes_in() -> None:
    """The producer waits for room; what it puts is counted under the queue's lock, so
    the count never runs ahead of what a reader of ``len`` can see."""
    source: BatchQueue[int] = BatchQueue(bound=4)
    counted: list[tuple[int, int]] = []  # (n, queue length once they were in)
    stop = threading.Event()

    def count(n: int) -> None:
        counted.append((n, len(source)))

    producer = threading.Thread(target=lambda: source.put_many(
        list(range(10)), stop.is_set, count, poll_s=0.01))
    producer.start()
    deadline = time.monotonic() + BOUND_S
    while len(source) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(source) == 4 and counted == [(4, 4)]  # full: the rest waits
    assert source.take(10) == [0, 1, 2, 3]
    taken: list[int] = []
    while len(taken) < 6 and time.monotonic() < deadline:
        taken += source.take(10, wait_s=0.01)
    producer.join(BOUND_S)
    assert taken == [4, 5, 6, 7, 8, 9]
    assert sum(n for n, _ in counted) == 10 and all(length <= 4 for _, length in counted)


def test_batch_queue_put_gives_up_once_stopping_and_says_how_many_went_in() -> None:
    source: BatchQueue[int] = BatchQueue(bound=2)
    assert source.put_many([1, 2, 3], lambda: True, lambda n: None, poll_s=0.01) == 2
    assert source.take(10) == [1, 2]


def test_batch_queue_take_lingers_as_long_as_linger_for_says_for_the_first_item() -> None:
    source: BatchQueue[str] = BatchQueue(bound=10)
    source.put_many(["batch"], never, lambda n: None, poll_s=0.01)
    started = time.monotonic()
    assert source.take(10, linger_s=BOUND_S, linger_for=lambda first: 0.0) == ["batch"]
    assert time.monotonic() - started < BOUND_S / 2  # no linger for this first item
    source.put_many(["single"], never, lambda n: None, poll_s=0.01)
    started = time.monotonic()
    assert source.take(10, linger_for=lambda first: 0.05) == ["single"]
    assert time.monotonic() - started >= 0.05


def test_batch_queue_take_stops_at_max_items_and_leaves_the_rest() -> None:
    source: BatchQueue[int] = BatchQueue(bound=10)
    source.put_many(list(range(7)), never, lambda n: None, poll_s=0.01)
    assert source.take(5, linger_s=BOUND_S) == [0, 1, 2, 3, 4]
    assert len(source) == 2
    assert source.take(5, wait_s=0.01) == [5, 6]
    assert source.take(5, wait_s=0.01) == []
