"""What a room count must be to be believed: one definition for every way data comes in.

The gateway applies it to live readings, ``softplace import`` to backfilled history, so a
file cannot store what a sensor would have been refused for. Pure: numbers in, the reason
out (``None`` when plausible).
"""

from __future__ import annotations

import math

DEFAULT_COUNT_BOUND_FACTOR = 2.0  # a count above capacity x factor + 2 is implausible
COUNT_BOUND_SLACK = 2  # a two-seat room can still hold a visitor or two
DEFAULT_MAX_FUTURE_S = 300.0  # clock skew tolerated ahead of the receiver's clock


def count_bound(capacity: int, factor: float = DEFAULT_COUNT_BOUND_FACTOR) -> int:
    """The largest plausible count for a room of ``capacity`` seats."""
    return int(capacity * factor) + COUNT_BOUND_SLACK


def count_problem(
    count: int, capacity: int, factor: float = DEFAULT_COUNT_BOUND_FACTOR
) -> str | None:
    bound = count_bound(capacity, factor)
    if not 0 <= count <= bound:
        return f"count {count} outside 0..{bound} (room capacity {capacity})"
    return None


def too_far_ahead(ts_s: float, now_s: float, max_future_s: float = DEFAULT_MAX_FUTURE_S) -> bool:
    """Whether a reading claims a time further ahead of ``now`` than clock skew explains."""
    return ts_s > now_s + max_future_s


def timestamp_problem(
    ts_s: float, now_s: float, max_future_s: float = DEFAULT_MAX_FUTURE_S
) -> str | None:
    """A Unix time in seconds: finite, not before 1970, not ahead of ``now`` beyond skew.
    The reason reads after the timestamp it is about ("... 120 s in the future ...")."""
    if not math.isfinite(ts_s):
        return "not a finite number"
    if ts_s < 0:
        return "before 1970"
    if too_far_ahead(ts_s, now_s, max_future_s):
        return (f"{ts_s - now_s:.0f} s in the future (beyond the {max_future_s:g} s of clock"
                " skew allowed)")
    return None
