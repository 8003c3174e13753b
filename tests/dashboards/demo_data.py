"""Demo-like points for every stored series, relative to an injected ``now_ms``.

Two sites (one with a dot in its id, so regex escaping matters), a few rooms, eight days
of room counts and sensor health, a month of derived and released series. Deterministic:
values come from the time and the room, never from a random generator.
"""

from __future__ import annotations

from collections.abc import Iterator

from softplace.storage.base import CountColumns, Sample
from softplace.storage.segments import SPAN_MS, encode_span

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# (site, building, floor, room, kind, area_m2, capacity, device)
ROOMS = (
    ("branch.lyon", "main", "ground", "hall", "hall", 140.0, 40, "lyon-hall-door"),
    ("branch.lyon", "main", "first", "meeting-a", "meeting", 28.0, 10, "lyon-meeting-a"),
    ("branch.lyon", "annex", "ground", "office-1", "office", 14.0, 3, "lyon-office-1"),
    ("nantes", "tower", "ground", "counter-1", "counter", 9.0, 3, "nantes-counter-1"),
)
RECIPIENTS = ("city-regulator", "open-data")
SELECTED = {"site": "branch.lyon", "building": "main", "room": "hall", "band": "opening",
            "recipient": "city-regulator"}


def _room_tags(room: tuple[str, str, str, str, str, float, int, str]) -> dict[str, str]:
    site, building, floor, room_id, kind = room[:5]
    return {"site": site, "building": building, "floor": floor, "room": room_id, "kind": kind}


def _count(hour_of_day: int, capacity: int, salt: int) -> int:
    if not 8 <= hour_of_day < 18:
        return 0
    return (hour_of_day * 7 + salt * 3) % (capacity + 1)


def room_counts(now_ms: int) -> Iterator[Sample]:
    start = now_ms - 8 * DAY_MS
    for salt, room in enumerate(ROOMS):
        for t in range(start, now_ms, 10 * 60_000):
            hour = (t // HOUR_MS) % 24
            yield Sample("room_count", _room_tags(room),
                         {"count": _count(hour, room[6], salt), "sources": 1}, t)


def count_segments(now_ms: int) -> Iterator[Sample]:
    """The last whole six-hour span of each site's room counts, packed as the detector does."""
    span = now_ms // SPAN_MS * SPAN_MS - SPAN_MS
    per_site: dict[str, dict[str, CountColumns]] = {}
    for sample in room_counts(now_ms):
        if span <= sample.time_ms < span + SPAN_MS:
            columns = per_site.setdefault(sample.tags["site"], {}).setdefault(
                sample.tags["room"], CountColumns())
            columns.times_ms.append(sample.time_ms)
            columns.counts.append(int(sample.fields["count"]))
    for site, counts in sorted(per_site.items()):
        parts = encode_span(counts)
        for index, (data, points) in enumerate(parts):
            yield Sample("room_count_segment", {"site": site, "part": str(index)}, {
                "data": data, "points": points, "parts": len(parts), "dirty": False}, span)


def sensor_health(now_ms: int) -> Iterator[Sample]:
    for index, room in enumerate(ROOMS):
        site, room_id, device = room[0], room[3], room[7]
        offline = index == len(ROOMS) - 1
        for t in range(now_ms - DAY_MS, now_ms, 15 * 60_000):
            yield Sample(
                "sensor_health", {"site": site, "device": device, "room": room_id},
                {"online": 0 if offline else 1, "last_seen": t / 1000 - (3600 if offline else 30),
                 "battery_pct": 90.0 - index * 20 - (now_ms - t) / DAY_MS,
                 "rssi_dbm": -55 - index * 10},
                t,
            )


def deadletters(now_ms: int) -> Iterator[Sample]:
    for i in range(12):
        site = ROOMS[i % len(ROOMS)][0]
        reason = ("schema", "unknown_device", "implausible_count")[i % 3]
        yield Sample("deadletter", {"site": site, "reason": reason},
                     {"n": 1, "topic": f"softplace/v1/{site}/dev/x/reading"},
                     now_ms - (i + 1) * 17 * 60_000)


def _midnights(now_ms: int, days: int) -> list[int]:
    today = now_ms - now_ms % DAY_MS
    return [today - d * DAY_MS for d in range(days, 0, -1)]


def _seat_hours(capacity: int, frequency: float, occupancy: float) -> dict[str, float]:
    """The utilisation rate's sums for 8 open hours, half an hour of them unknown."""
    observed = capacity * (8.0 - 0.5)
    return {"occupied_seat_h": observed * frequency * occupancy, "observed_seat_h": observed}


def derived(now_ms: int) -> Iterator[Sample]:
    for salt, room in enumerate(ROOMS):
        tags = _room_tags(room)
        area, capacity = room[5], room[6]
        for day, midnight in enumerate(_midnights(now_ms, 28)):
            frequency = ((day + salt) % 5) / 5
            occupancy = ((day * 3 + salt) % 4 + 1) / 5
            yield Sample("room_measure", {**tags, "band": "opening"}, {
                "available_h": 8.0, "used_h": 8.0 * frequency, "unknown_h": 0.5,
                "frequency_rate": frequency, "occupancy_rate": occupancy,
                "utilisation_rate": frequency * occupancy, "peak_count": capacity // 2 + 1,
                "idle_m2h": area * 8.0 * (1 - frequency), "area_m2": area,
                "capacity": capacity, **_seat_hours(capacity, frequency, occupancy)}, midnight)
            yield Sample("space_measure", {
                "site": tags["site"], "building": tags["building"], "floor": tags["floor"],
                "level": "floor", "band": "opening"}, {
                "available_h": 8.0, "used_h": 8.0 * frequency, "unknown_h": 0.5,
                "frequency_rate": frequency, "occupancy_rate": occupancy,
                "utilisation_rate": frequency * occupancy, "peak_count": capacity // 2 + 1,
                "idle_m2h": area * 8.0 * (1 - frequency), "area_m2": area,
                "capacity": capacity, "rooms": 1,
                **_seat_hours(capacity, frequency, occupancy)}, midnight)
            opening = midnight + 8 * HOUR_MS
            for state, begin, hours in (("vacant", midnight, 8), ("occupied", opening, 2),
                                        ("vacant", opening + 2 * HOUR_MS, 6),
                                        ("unknown", opening + 8 * HOUR_MS, 8)):
                yield Sample("room_interval", {**tags, "state": state}, {
                    "end_ms": begin + hours * HOUR_MS, "duration_s": hours * 3600.0,
                    "peak_count": 0 if state != "occupied" else capacity // 2,
                    "mean_count": 0.0 if state != "occupied" else capacity / 4}, begin)
            if (day + salt) % 3 == 0:
                yield Sample("breach", tags, {
                    "duration_s": 6 * 3600.0, "limit_s": 4 * 3600.0,
                    "end_ms": opening + 8 * HOUR_MS,
                    "ghost_booked": int((day + salt) % 8 == 0)}, opening + 2 * HOUR_MS)
            if (day + salt) % 4 == 0:  # an accepted booking, every fourth room-day
                ghost = (day + salt) % 8 == 0
                yield Sample("booking", tags, {
                    "end_ms": opening + 4 * HOUR_MS, "booked_h": 2.0,
                    "used_h": 0.0 if ghost else 2.0, "checked": 1, "ghost": int(ghost),
                    "unknown": 0}, opening + 2 * HOUR_MS)


def releases(now_ms: int) -> Iterator[Sample]:
    areas = (("building", "branch.lyon/main"), ("building", "branch.lyon/annex"),
             ("building", "nantes/tower"), ("district", "lyon-3"), ("district", "nantes-1"))
    for recipient_index, recipient in enumerate(RECIPIENTS):
        for day, midnight in enumerate(_midnights(now_ms, 28)):
            for index, (level, area) in enumerate(areas):
                suppressed = area == "nantes/tower"  # one room: below k, suppressed
                fields: dict[str, float | int] = (
                    {"suppressed": 1, "k": 3, "epsilon": 0.0} if suppressed else {
                        "available_m2h": 1000.0 + index * 100, "idle_m2h": 600.0 - day,
                        "utilisation_rate": 0.2 + index / 20, "breaches": float(day % 4),
                        "rooms": 5 + index, "epsilon": 0.1, "k": 3, "suppressed": 0})
                yield Sample("regulator_aggregate", {"recipient": recipient, "level": level,
                                                     "area": area, "period": "day"},
                             fields, midnight + 20 * HOUR_MS)
            yield Sample("privacy_budget", {"recipient": recipient}, {
                "epsilon_spent": 0.5 * (day + 1) / (recipient_index + 1),
                "epsilon_limit": 20.0, "releases": day + 1}, midnight + 20 * HOUR_MS + 1)
    for day, midnight in enumerate(_midnights(now_ms, 28)):
        for check in ("retention", "minimisation"):
            ok = 0 if (check == "retention" and day == 27) else 1
            yield Sample("privacy_audit", {"check": check}, {
                "ok": ok, "breaches": 1 - ok,
                "detail": "ok" if ok else "raw: oldest point 31 d > 30 d"}, midnight + 21 * HOUR_MS)


def statuses(now_ms: int) -> Iterator[Sample]:
    """The gateways' and the detector's own state, every 5 min for 6 h: drained, caught up."""
    last = now_ms - now_ms % 60_000
    for site in sorted({room[0] for room in ROOMS}):
        for step in range(72):
            t = last - step * 300_000
            yield Sample("gateway_status", {"site": site}, {"backlog_s": 0.0, "upstream": 1}, t)
            yield Sample("detector_status", {"site": site}, {
                "lag_s": 130.0, "checkpoint_age_s": 10.0, "late_readings": 0}, t + 1)


def all_samples(now_ms: int) -> list[Sample]:
    return [*room_counts(now_ms), *count_segments(now_ms), *sensor_health(now_ms),
            *deadletters(now_ms),
            *derived(now_ms), *releases(now_ms), *statuses(now_ms)]
