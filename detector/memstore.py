"""An in-process ``Store``: for pure tests, the benchmark and dry runs (``--dry-run``).

Same semantics as the real backends where the detector relies on them: one point per
``(series, tags, time)`` (a rewrite replaces), ``start <= time < end``, tag filters,
results ordered by time then tags. Not durable, no retention.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

from softplace.storage.base import RetentionPolicy, Sample

_TagKey = tuple[tuple[str, str], ...]


class _Group:
    __slots__ = ("by_time", "dirty", "samples", "times")

    def __init__(self) -> None:
        self.by_time: dict[int, Sample] = {}
        self.times: list[int] = []
        self.samples: list[Sample] = []
        self.dirty = False

    def index(self) -> None:
        if self.dirty:
            self.times = sorted(self.by_time)
            self.samples = [self.by_time[t] for t in self.times]
            self.dirty = False


class MemoryStore:
    def __init__(self) -> None:
        self._series: dict[str, dict[_TagKey, _Group]] = {}
        self.writes = 0

    def write(self, samples: Sequence[Sample]) -> None:
        self.writes += 1
        for sample in samples:
            groups = self._series.setdefault(sample.series, {})
            key = tuple(sorted(sample.tags.items()))
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group()
            group.by_time[sample.time_ms] = sample
            group.dirty = True

    def query(
        self, series_name: str, start_ms: int, end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Sample]:
        wanted = tuple((tags or {}).items())
        result: list[Sample] = []
        for key, group in self._series.get(series_name, {}).items():
            if wanted:
                have = dict(key)
                if any(have.get(k) != v for k, v in wanted):
                    continue
            group.index()
            lo, hi = bisect_left(group.times, start_ms), bisect_left(group.times, end_ms)
            result.extend(group.samples[lo:hi])
        result.sort(key=lambda s: (s.time_ms, tuple(sorted(s.tags.items()))))
        return result

    def oldest_ms(self, series_name: str) -> int | None:
        times = [min(g.by_time) for g in self._series.get(series_name, {}).values() if g.by_time]
        return min(times) if times else None

    def stored_series(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for name, groups in self._series.items():
            fields = result.setdefault(name, set())
            for group in groups.values():
                for sample in group.by_time.values():
                    fields.update(sample.fields)
        return {name: fields for name, fields in result.items() if fields}

    def apply_retention(self, policies: Sequence[RetentionPolicy]) -> None:
        """No retention in memory."""

    def delete_series(self, series_name: str, tags: Mapping[str, str] | None = None) -> None:
        if not tags:
            self._series.pop(series_name, None)
            return
        groups = self._series.get(series_name, {})
        for key in [k for k in groups if all(dict(k).get(t) == v for t, v in tags.items())]:
            del groups[key]

    def close(self) -> None:
        """Nothing to release."""
