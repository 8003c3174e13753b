"""Sensor drivers behind one small interface.

Every sensor object has ``kind`` (the payload's ``sensor`` field), ``start(now_ms)``
(returns None or a readable error), ``read(now_ms) -> (presence, entered, left)`` where
``presence`` is True/False or None when the hardware has no presence sensing, and
``fresh(now_ms)`` (the sensor answered recently; the watchdog policy uses it). Drivers
receive their bus objects (``machine.UART``, ``machine.I2C``, ``machine.Pin`` on the
device, replaying fakes on the host) and never import ``machine`` themselves.
"""
