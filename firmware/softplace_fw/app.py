"""The device application without I/O: sensing step, outbox, remote config, status.

``main.py`` owns the event loop, the MQTT client, the watchdog and the hardware; it
calls ``Device.sense`` every ``sample_ms``, publishes whatever ``Device.outbox`` holds
(oldest first, acknowledged with ``sent``), hands retained config messages to
``on_config`` and publishes the status dicts it returns. Every reading goes through the
offline buffer, even when the broker is up: one path, so replay after an outage is
the ordinary path and is always exercised.
"""

from . import config as configuration
from . import payload, topics
from .core import SensorCore


class Device:
    def __init__(self, cfg: dict, device_id: str, boot: int, sensor, buffer, wall,
                 health, rssi=None) -> None:
        self.cfg = cfg
        self.sensor = sensor
        self.buffer = buffer
        self.wall = wall
        self.health = health
        self.rssi = rssi  # callable -> dBm or None
        self.core = SensorCore(device_id, boot, cfg, sensor.kind)
        self.site = cfg["site"]
        self.reading_topic = topics.reading(self.site, device_id)
        self.status_topic = topics.status(self.site, device_id)
        self.config_topic = topics.config(self.site, device_id)
        self._reported_drops = 0

    def start(self, now_ms: int):
        """Start (and calibrate) the sensor; returns None or an error for the status."""
        return self.sensor.start(now_ms)

    def sense(self, now_ms: int) -> int:
        """Read the sensor once, queue any reading due; returns how many were queued."""
        presence, entered, left = self.sensor.read(now_ms)
        if self.sensor.fresh(now_ms):
            self.health.sensed(now_ms)
        rssi = self.rssi() if self.rssi is not None else None
        out = self.core.observe(now_ms, self.wall.unix(), self.wall.synced, presence, entered,
                                left, rssi_dbm=rssi)
        for message in out:
            self.buffer.push(payload.encode(message))
        return len(out)

    def outbox(self):
        """The oldest queued reading as (topic, bytes), or None."""
        item = self.buffer.peek()
        return None if item is None else (self.reading_topic, item)

    def sent(self) -> None:
        """The broker acknowledged the reading ``outbox`` returned."""
        self.buffer.pop()

    def online_status(self, reset_cause) -> dict:
        return self.core.status("online", self.wall.unix(), reset_cause=reset_cause)

    def will(self):
        return self.status_topic, payload.encode(self.core.will())

    def drops_status(self):
        """A status reporting new offline-buffer drops, or None if nothing new was lost."""
        dropped = self.buffer.dropped
        if dropped == self._reported_drops:
            return None
        self._reported_drops = dropped
        return self.core.status("online", self.wall.unix(),
                                error="offline buffer dropped {} readings".format(dropped))

    def on_config(self, data) -> dict:
        """Apply a retained config message; returns the status to publish (error if refused)."""
        try:
            update = payload.decode(data)
        except ValueError as err:
            return self.core.status("online", self.wall.unix(),
                                    error="config refused: not a JSON object ({})".format(err))
        new, errors = configuration.validate(update, self.cfg, remote=True)
        apply = getattr(self.sensor, "apply", None)  # ld2410_* / tof_* applied live
        sensor_errors = apply(new) if apply is not None else []
        if sensor_errors:  # the sensor kept its old settings: so does the config
            errors.extend(sensor_errors)
            for name in update:
                if (name.startswith("ld2410_") or name.startswith("tof_")) and name in self.cfg:
                    new[name] = self.cfg[name]
        self.health.offline_limit_ms = new["offline_reboot_s"] * 1000
        self.cfg = new
        self.core.reconfigure(new)
        error = configuration.summarise(errors) if errors else None
        return self.core.status("online", self.wall.unix(), error=error)
