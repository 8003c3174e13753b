"""SoftPlace room-sensor firmware: pure core modules plus hardware drivers.

Everything here runs unchanged under MicroPython (on the ESP32 and in the host test
harness) and under CPython (the virtual sensor and the pytest suite). Nothing at module
level imports ``machine`` or ``network``; drivers take injected bus objects.
"""

FW_VERSION = "0.1.0"
