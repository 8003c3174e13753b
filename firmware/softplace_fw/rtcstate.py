"""RTC memory shared by the sensing state and the offline buffer's ring.

``machine.RTC().memory()`` is one block (2048 bytes on the ESP32) that survives soft,
watchdog and deep-sleep resets, not power loss. The first ``STATE_BYTES`` hold a small
JSON object (the doorway count, the clock's synced state); the rest is the ring's.
``RtcSlots`` has the ``memory()`` method of ``machine.RTC`` for the ring, so the buffer
code is unchanged, and ``state()``/``save_state()`` for the rest. A block without the
magic (written by an older firmware, or garbage after power-on) gives an empty state and
is handed whole to the ring, which checks its own format.
"""

import json

MAGIC = b"SPs1"
STATE_BYTES = 48
_BODY = STATE_BYTES - len(MAGIC) - 1


class RtcSlots:
    def __init__(self, rtc) -> None:
        self.rtc = rtc
        self.writes = 0
        data = bytes(rtc.memory() or b"")
        self._state = b""
        self._ring = data
        if len(data) >= STATE_BYTES and data[:len(MAGIC)] == MAGIC:
            n = data[len(MAGIC)]
            if n <= _BODY:
                self._state = data[len(MAGIC) + 1:len(MAGIC) + 1 + n]
            self._ring = data[STATE_BYTES:]

    def memory(self, data=None):
        """The ring's part, like ``machine.RTC.memory``: read it, or write ``data``."""
        if data is None:
            return self._ring
        self._ring = bytes(data)
        self._write()
        return None

    def state(self) -> dict:
        if not self._state:
            return {}
        try:
            value = json.loads(self._state)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def save_state(self, state: dict) -> bool:
        """Store ``state`` if it fits and changed; False if it does not fit."""
        body = json.dumps(state).replace(" ", "").encode()
        if len(body) > _BODY:
            return False
        if body != self._state:
            self._state = body
            self._write()
        return True

    def _write(self) -> None:
        head = MAGIC + bytes((len(self._state),)) + self._state
        self.rtc.memory(head + bytes(STATE_BYTES - len(head)) + self._ring)
        self.writes += 1
