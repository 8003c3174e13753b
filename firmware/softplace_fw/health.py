"""Watchdog policy: feed the hardware watchdog only while the device is doing its job.

Healthy means: the sensor produced a sample recently, no publish has been stuck longer
than its timeout, and the device has not been offline longer than ``offline_limit_ms``
(mqtt_as keeps reconnecting with capped backoff on its own; if that has not worked for
an hour, a clean reboot is the last resort). Reconnecting never blocks the loop that
asks ``ok``, so a broker outage alone does not starve the watchdog.
"""


class Health:
    def __init__(self, sense_timeout_ms: int, publish_timeout_ms: int,
                 offline_limit_ms: int) -> None:
        self.sense_timeout_ms = sense_timeout_ms
        self.publish_timeout_ms = publish_timeout_ms
        self.offline_limit_ms = offline_limit_ms
        self._sensed = None  # type: int | None
        self._publish_started = None  # type: int | None
        self._offline_since = 0  # type: int | None  # offline from boot until connected
        self.reason = ""

    def sensed(self, now_ms: int) -> None:
        self._sensed = now_ms

    def publish_started(self, now_ms: int) -> None:
        self._publish_started = now_ms

    def publish_done(self) -> None:
        self._publish_started = None

    def connection(self, now_ms: int, up: bool) -> None:
        if up:
            self._offline_since = None
        elif self._offline_since is None:
            self._offline_since = now_ms

    def ok(self, now_ms: int) -> bool:
        """True when the watchdog may be fed; ``reason`` says why not."""
        if self._sensed is None or now_ms - self._sensed > self.sense_timeout_ms:
            self.reason = "sensor silent"
            return False
        if (self._publish_started is not None
                and now_ms - self._publish_started > self.publish_timeout_ms):
            self.reason = "publish stuck"
            return False
        if self._offline_since is not None and now_ms - self._offline_since > self.offline_limit_ms:
            self.reason = "offline too long"
            return False
        self.reason = ""
        return True
