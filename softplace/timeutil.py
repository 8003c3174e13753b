"""Time in SoftPlace: Unix milliseconds (int) everywhere, converted here and only here.

One rounding rule for seconds -> milliseconds: the nearest millisecond (``round``, half
to even). Floats cannot hold most decimal fractions, so a value with millisecond precision
often multiplies to just below its integer (``1.001 * 1000`` is ``1000.9999999999999``);
flooring or truncating would move it one millisecond early, and the same reading would get
different times in ingest (which stored ``floor``) and in the detector's live path (which
used ``round``). Rounding gives every stage the millisecond that was meant; sub-millisecond
clock readings (``time.time()``) move by at most half a millisecond, which nothing resolves.
"""

from __future__ import annotations

import datetime as dt
import time

MS_PER_S = 1000
MS_PER_H = 3_600_000
MS_PER_DAY = 86_400_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US_PER_MS = 1000


def s_to_ms(seconds: float) -> int:
    """Seconds (Unix time or a duration) to the nearest millisecond."""
    return round(seconds * MS_PER_S)


def ms_to_s(ms: int) -> float:
    return ms / MS_PER_S


def now_ms() -> int:
    return s_to_ms(time.time())


def datetime_to_ms(moment: dt.datetime) -> int:
    """An aware datetime to Unix ms, rounded like ``s_to_ms`` but from exact microseconds.

    A naive datetime is refused: its meaning would depend on the machine's time zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return round((moment - _EPOCH) // dt.timedelta(microseconds=1) / _US_PER_MS)


def ms_to_datetime(ms: int, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / MS_PER_S, tz)


def local_date(ms: int, tz: dt.tzinfo) -> dt.date:
    """The date in ``tz`` of the instant ``ms``."""
    return ms_to_datetime(ms, tz).date()


def local_ms(day: dt.date, minute: int, tz: dt.tzinfo) -> int:
    """UTC ms of ``minute`` past local midnight of ``day`` (1440 = next midnight).

    A clock time skipped by a DST change is read with the offset before the change
    (PEP 495, fold=0): a midnight that does not exist maps to the instant of the jump.
    """
    if minute >= 24 * 60:
        return local_ms(day + dt.timedelta(days=1), minute - 24 * 60, tz)
    aware = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=tz)
    return datetime_to_ms(aware)
