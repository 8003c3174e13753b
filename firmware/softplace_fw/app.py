"""The device application without I/O: sensing step, outbox, remote config, status.

``main.py`` owns the event loop, the MQTT client, the watchdog and the hardware; it
calls ``Device.sense`` every ``sample_ms``, publishes whatever ``Device.outbox`` holds
(oldest unsent first; ``sent`` after the broker's PUBACK), hands retained config
messages to ``on_config`` and gateway acknowledgements to ``on_ack``, calls
``reconnected`` after every (re)connect and publishes the status dicts it gets. Every
reading goes through the spool, even when the broker is up: one path, so replay after
an outage is the ordinary path and is always exercised.

A reading is forgotten only when the gateway's ack covers it (``{"v": 1, "boot": B,
"seq": S}`` on the device's ack topic: everything up to ``(B, S)`` is durably in the
gateway's outbox). The unacknowledged tail is sent again after every reconnect and
when no ack covered the oldest sent reading for ``ACK_RESEND_S``.
"""

from . import config as configuration
from . import payload, topics
from .core import SensorCore

ACK_RESEND_S = 30
ACK_VERSION = 1


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
        self.ack_topic = topics.ack(self.site, device_id)
        self._in_flight_since = None  # type: int | None  # ms the oldest unacked was sent
        self.acked = None  # type: tuple | None  # the highest (boot, seq) acknowledged

    def start(self, now_ms: int):
        """Start (and calibrate) the sensor; returns None or an error for the status."""
        return self.sensor.start(now_ms)

    def sense(self, now_ms: int) -> int:
        """Read the sensor once, queue any reading due; returns how many were queued."""
        presence, entered, left = self.sensor.read(now_ms)
        # the loop is alive: a silent or failing sensor is the core's to report (held, then
        # unknown, with a fault), never a reason for the watchdog to reset the board
        self.health.sensed(now_ms)
        rssi = self.rssi() if self.rssi is not None else None
        out = self.core.observe(now_ms, self.wall.unix(), self.wall.synced, presence, entered,
                                left, rssi_dbm=rssi)
        for message in out:
            self.buffer.push(payload.encode(message))
        return len(out)

    def outbox(self, now_ms: int):
        """The oldest reading to send now as (topic, bytes), or None.

        Rewinds to the oldest unacknowledged reading first when no ack came for
        ``ACK_RESEND_S`` since it was sent.
        """
        since = self._in_flight_since
        if since is not None and now_ms - since >= ACK_RESEND_S * 1000:
            self.buffer.rewind()
            self._in_flight_since = None
        item = self.buffer.next_unsent()
        return None if item is None else (self.reading_topic, item)

    def sent(self, now_ms: int, item=None) -> None:
        """The broker acknowledged (PUBACK) ``item``, the reading ``outbox`` returned.

        A reconnect may have rewound the spool while the publish waited: then the cursor
        no longer points at ``item`` and nothing is marked (it goes out again; harmless).
        """
        if item is not None and self.buffer.next_unsent() != item:
            return
        if not self.buffer.in_flight():
            self._in_flight_since = now_ms
        self.buffer.mark_sent()

    def reconnected(self) -> None:
        """A new broker session: send the whole unacknowledged tail again."""
        self.buffer.rewind()
        self._in_flight_since = None

    def on_ack(self, data, now_ms: int) -> int:
        """A gateway ack; returns how many readings it let the spool forget (-1: refused)."""
        try:
            ack = payload.decode(data)
            boot, seq = ack["boot"], ack["seq"]
        except (ValueError, KeyError):
            return -1
        if (ack.get("v") != ACK_VERSION or not isinstance(boot, int) or not isinstance(seq, int)
                or isinstance(boot, bool) or isinstance(seq, bool)):
            return -1
        forgotten = self.buffer.ack(boot, seq)
        if self.acked is None or (boot, seq) > self.acked:
            self.acked = (boot, seq)
        if forgotten:
            self._in_flight_since = now_ms if self.buffer.in_flight() else None
        return forgotten

    def online_status(self, reset_cause) -> dict:
        return self.core.status("online", self.wall.unix(), reset_cause=reset_cause)

    def will(self):
        return self.status_topic, payload.encode(self.core.will())

    def drops_status(self):
        """A status reporting new offline-buffer drops, or None if nothing new was lost."""
        dropped = self.buffer.dropped
        if dropped == self.buffer.reported:
            return None
        self.buffer.reported = dropped
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
