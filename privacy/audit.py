"""The retention and minimisation audit: policy compared with what is actually stored.

``audit_snapshot`` is a pure comparison of a snapshot (series -> fields, oldest point,
tags when the store can list them) with the retention policies and the schema;
``check_schema`` checks the schema and wire contracts themselves; ``run_audit`` is the thin
shell that takes the snapshot from a Store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from softplace.messages import RoomReading
from softplace.schema import (
    SERIES,
    AuditField,
    DeadletterField,
    Family,
    MeasureField,
    RoomCountField,
    RoomIntervalField,
    SegmentField,
    Series,
    SeriesName,
)
from softplace.storage.base import RetentionPolicy, Sample, Store
from softplace.timeutil import MS_PER_DAY, MS_PER_H

# Name parts that would mean a field or tag could hold a person, a MAC address or an image.
FORBIDDEN_PARTS = frozenset({
    "name", "firstname", "surname", "person", "user", "email", "phone", "mac", "bssid",
    "ssid", "ip", "image", "img", "photo", "picture", "video", "frame", "face", "badge",
})
DEVICE_PARTS = frozenset({"device", "dev", "boot", "seq"})
PEOPLE_FIELDS = frozenset({
    RoomCountField.COUNT, MeasureField.PEAK_COUNT, RoomIntervalField.PEAK_COUNT,
    RoomIntervalField.MEAN_COUNT, MeasureField.OCCUPIED_SEAT_H,
})
# Free-text fields allowed in storage, and why none can hold a person's name or an image.
TEXT_FIELDS: dict[tuple[str, str], str] = {
    (SeriesName.DEADLETTER, DeadletterField.TOPIC):
        "the MQTT topic of a rejected message: site and device ids only",
    (SeriesName.ROOM_COUNT_SEGMENT, SegmentField.DATA):
        "room ids, times and counts of room_count, packed by the store"
        " (softplace/storage/segments.py): no other content",
    (SeriesName.PRIVACY_AUDIT, AuditField.DETAIL):
        "text written by this audit from series and field names, the ledger's path and"
        " recipient names",
}


LEDGER_CHECK = "ledger"
CHECKS = ("retention", "unknown_series", "unknown_field", "unknown_tag", "minimisation",
          LEDGER_CHECK)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # one of CHECKS
    series: str
    detail: str


@dataclass(frozen=True, slots=True)
class Deletion:
    """A deletion a stage's own retention made in its local file (e.g. booking requesters)."""

    holding: str
    when_ms: int
    detail: str


@dataclass(frozen=True, slots=True)
class AuditResult:
    now_ms: int
    policies: tuple[RetentionPolicy, ...]
    findings: tuple[Finding, ...]
    series_checked: dict[str, int | None] = field(default_factory=dict)  # series -> oldest
    deletions: tuple[Deletion, ...] = ()  # what local retention deleted, oldest first

    @property
    def ok(self) -> bool:
        return not self.findings

    def by_check(self) -> dict[str, list[Finding]]:
        return {c: [f for f in self.findings if f.check == c] for c in CHECKS}


def _parts(name: str) -> set[str]:
    return {p for p in re.split(r"[^a-z0-9]+", name.lower()) if p}


def default_grace_ms(days: int) -> int:
    """How far past its limit a point may legitimately still exist: InfluxDB drops whole
    shard groups (default duration 1 h for policies under 2 days, 1 day up to 6 months,
    7 days beyond) and its retention service runs every 30 minutes."""
    if days < 2:
        shard = MS_PER_H
    elif days <= 180:
        shard = MS_PER_DAY
    else:
        shard = 7 * MS_PER_DAY
    return shard + MS_PER_H


def check_schema(
    schema: Mapping[str, Series] = SERIES, room_message: type[BaseModel] = RoomReading
) -> list[Finding]:
    """Minimisation rules on the code's own contracts."""
    findings: list[Finding] = []
    for s in schema.values():
        for name in (*s.tags, *s.fields):
            if _parts(name) & FORBIDDEN_PARTS:
                findings.append(Finding("minimisation", s.name, f"{name!r} could identify someone"))
        for name, kind in s.fields.items():
            if kind == "str" and (s.name, name) not in TEXT_FIELDS:
                findings.append(Finding(
                    "minimisation", s.name, f"free-text field {name!r} could hold a name"
                ))
        has_device = any(_parts(t) & DEVICE_PARTS for t in (*s.tags, *s.fields))
        if has_device and set(s.fields) & PEOPLE_FIELDS:
            findings.append(Finding(
                "minimisation", s.name, "device identity stored next to a people count"
            ))
        if s.family is Family.AGGREGATES and {"room", "device"} & set(s.tags):
            findings.append(Finding("minimisation", s.name, "aggregate keyed by room or device"))
    leaked = [f for f in room_message.model_fields if _parts(f) & (DEVICE_PARTS | FORBIDDEN_PARTS)]
    if leaked:
        findings.append(Finding(
            "minimisation", SeriesName.ROOM_COUNT,
            f"{room_message.__name__} carries {leaked} past the gateway",
        ))
    return findings


def audit_snapshot(
    *,
    stored: Mapping[str, set[str]],
    oldest: Mapping[str, int | None],
    policies: Sequence[RetentionPolicy],
    now_ms: int,
    grace_hours: float | None = None,
    tags: Mapping[str, set[str]] | None = None,
    schema: Mapping[str, Series] = SERIES,
) -> AuditResult:
    """Compare a snapshot of the store with the policies and the schema."""
    findings = list(check_schema(schema))
    days_of = {p.family: p.days for p in policies}
    for name in sorted(stored):
        if name not in schema:
            findings.append(Finding("unknown_series", name, "stored but not in the schema"))
            continue
        s = schema[name]
        extra = sorted(stored[name] - set(s.fields))
        if extra:
            findings.append(Finding("unknown_field", name, f"fields not in the schema: {extra}"))
        if tags is not None and name in tags:
            extra_tags = sorted(tags[name] - set(s.tags))
            if extra_tags:
                findings.append(
                    Finding("unknown_tag", name, f"tags not in the schema: {extra_tags}")
                )
        days = days_of.get(s.family)
        if days is None:
            findings.append(Finding("retention", name, f"no retention policy for {s.family}"))
            continue
        first = oldest.get(name)
        if days == 0 or first is None:
            continue
        grace = default_grace_ms(days) if grace_hours is None else int(grace_hours * MS_PER_H)
        limit = now_ms - days * MS_PER_DAY
        if first < limit - grace:
            over_days = (limit - first) / MS_PER_DAY
            findings.append(Finding(
                "retention", name,
                f"oldest point is {over_days:.1f} days past the {days}-day {s.family} policy",
            ))
    return AuditResult(
        now_ms, tuple(policies), tuple(findings), {n: oldest.get(n) for n in sorted(stored)}
    )


def run_audit(
    store: Store, policies: Sequence[RetentionPolicy], now_ms: int,
    grace_hours: float | None = None,
) -> AuditResult:
    stored = store.stored_series()
    oldest: dict[str, int | None] = {}
    for name in stored:
        try:
            oldest[name] = store.oldest_ms(name)
        except (KeyError, ValueError):  # a series outside the schema: the store may refuse it
            oldest[name] = None
    return audit_snapshot(
        stored=stored, oldest=oldest, policies=policies, now_ms=now_ms,
        grace_hours=grace_hours, tags=store.stored_tags(),
    )


def audit_samples(result: AuditResult) -> list[Sample]:
    """One ``privacy_audit`` point per check (time = the audit's)."""
    return [
        Sample(
            SeriesName.PRIVACY_AUDIT, {"check": check},
            {
                AuditField.OK: int(not found), AuditField.BREACHES: len(found),
                AuditField.DETAIL:
                    "; ".join(f"{f.series}: {f.detail}" for f in found)[:1000] or "ok",
            },
            result.now_ms,
        )
        for check, found in result.by_check().items()
    ]
