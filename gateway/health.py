"""Sensor health on a fixed schedule, coarsened so it carries no occupancy timing. Pure.

The firmware reports on change (plus a heartbeat), so the time of a device's last reading
is the time somebody came or went. Health therefore never follows readings: one report
per known device per ``period_s`` slot, stamped with the slot's start, whether or not it
said anything in that slot. ``last_seen`` leaves the gateway as the start of
the previous slot while the device is fresh (heard within ``fresh_s``, the window after
which the gateway stops counting a silent sensor; the heartbeat is far shorter), and only
a device silent for longer shows when it was last heard, rounded down to its slot. What
the facilities team needs (is it online, since when is it silent, battery, signal) is
kept; when a count changed is not. ``docs/privacy.md`` §1 states the guarantee.

The gateway's own status (``GatewayStatus``) goes out on the same schedule, one per slot.
Its backlog is the age, at this slot, of the oldest status still in the outbox (its own
slot stamp): statuses drain within milliseconds while upstream takes them (backlog 0), and
once forwarding stops the backlog grows one period per slot. It is measured on the
statuses, never on the oldest row of any kind: a reading queued between the outage and the
next slot would make that one older, so it would tell that somebody came or went then
(``tests/gateway/test_status.py`` shows both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from softplace.messages import GatewayStatus, SensorHealth

# One report per device per minute. The period only sets how soon an online/offline change
# shows; the timing of readings is hidden whatever it is (fresh devices all read the same).
HEALTH_PERIOD_S = 60.0


def slot_start(t: float, period_s: float) -> float:
    return math.floor(t / period_s) * period_s


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What the gateway knows of one device (its latest state, not its history)."""

    online: bool
    last_seen: float | None
    battery_pct: float | None
    rssi_dbm: int | None


class Schedule:
    """One report per ``period_s`` slot."""

    def __init__(self, period_s: float = HEALTH_PERIOD_S) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.period_s = period_s
        self._last_slot: float | None = None

    def due(self, now: float) -> float | None:
        """The slot to report for, once per slot, or None; a clock that steps back waits
        for the next slot after the last one reported."""
        slot = slot_start(now, self.period_s)
        if self._last_slot is not None and slot <= self._last_slot:
            return None
        self._last_slot = slot
        return slot


class HealthReporter(Schedule):
    """Decides when health is due and what it may say."""

    def __init__(self, fresh_s: float, period_s: float = HEALTH_PERIOD_S) -> None:
        super().__init__(period_s)
        self.fresh_s = max(fresh_s, period_s)

    def coarse_last_seen(self, last_seen: float | None, slot: float) -> float | None:
        if last_seen is None:
            return None
        if last_seen >= slot - self.fresh_s:
            return slot - self.period_s
        return slot_start(last_seen, self.period_s)

    def report(self, site: str, device: str, room: str | None, state: DeviceHealth,
               slot: float) -> SensorHealth:
        return SensorHealth(
            site=site, device=device, room=room, ts=slot, online=state.online,
            last_seen=self.coarse_last_seen(state.last_seen, slot),
            battery_pct=state.battery_pct, rssi_dbm=state.rssi_dbm,
        )


class StatusReporter(Schedule):
    """The gateway's own status, on the health schedule."""

    def backlog_s(self, oldest_status: float | None, slot: float) -> float:
        """The age at ``slot`` of the oldest status still waiting (stamped
        ``oldest_status``), in whole periods; 0 when none waits."""
        if oldest_status is None:
            return 0.0
        return max(0.0, math.floor((slot - oldest_status) / self.period_s) * self.period_s)

    def report(self, site: str, slot: float, oldest_status: float | None,
               upstream: bool) -> GatewayStatus:
        return GatewayStatus(site=site, ts=slot, backlog_s=self.backlog_s(oldest_status, slot),
                             upstream=upstream)
