"""Watchdog policy: feed the hardware watchdog only while the device is doing its job.

Healthy means: the sensing loop produced a sample recently and the device has not been
offline longer than ``offline_limit_ms`` (mqtt_as keeps reconnecting with capped backoff
on its own; if that has not worked for that long, a clean reboot is the last resort).

A publish waiting for the broker is never a reason to reset: mqtt_as's QoS 1 publish
waits by design until the broker is back, and it runs in the outbox task, not in the
sensing loop that asks ``ok`` and feeds the watchdog. A reboot would not bring the
broker back, and each new boot would meet the same outage. Only a sensing loop that is
really stuck (no sample for ``sense_timeout_ms``) starves the watchdog.
"""


class Health:
    def __init__(self, sense_timeout_ms: int, offline_limit_ms: int) -> None:
        self.sense_timeout_ms = sense_timeout_ms
        self.offline_limit_ms = offline_limit_ms
        self._sensed = None  # type: int | None
        self._offline_since = 0  # type: int | None  # offline from boot until connected
        self.reason = ""

    def sensed(self, now_ms: int) -> None:
        self._sensed = now_ms

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
        if self._offline_since is not None and now_ms - self._offline_since > self.offline_limit_ms:
            self.reason = "offline too long"
            return False
        self.reason = ""
        return True
