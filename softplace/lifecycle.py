"""One lifecycle for every long-running service: start once, stop once (idempotent, from
any thread), run until stopped, and SIGTERM/SIGINT turned into a stop.

``stop_on_signals`` never does real work in the signal handler: the handler only writes
the signal number to a pipe, and a watcher thread sets the stop event. Setting an
``Event`` from the handler itself could deadlock, because the handler runs on the main
thread between two bytecodes, possibly while that thread holds the event's own lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

log = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
REPORT_EVERY_S = 30.0


class Service:
    """Subclasses put their start-up in ``_start`` and their teardown in ``_stop``.

    ``stop`` may be called from any thread, any number of times, started or not (``_stop``
    runs exactly once and must cope with a service that never started); ``run_forever``
    starts, logs ``summary()`` every ``report_every_s`` and stops when ``stop_event`` is
    set (``stop_on_signals`` sets it on SIGTERM/SIGINT)."""

    def __init__(self, name: str, *, report_every_s: float = REPORT_EVERY_S) -> None:
        self.name = name
        self.report_every_s = report_every_s
        self._stop_event = threading.Event()
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False

    @property
    def stop_event(self) -> threading.Event:
        """Set it (e.g. from ``stop_on_signals``) to make ``run_forever`` return."""
        return self._stop_event

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def start(self) -> None:
        with self._state_lock:
            if self._started or self._stopped:
                return
            self._started = True
        self._start()

    def stop(self) -> None:
        self._stop_event.set()
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop()
        log.info("%s stopped: %s", self.name, self.summary())

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop_event.wait(self.report_every_s):
                log.info("%s: %s", self.name, self.summary())
        finally:
            self.stop()

    def summary(self) -> str:
        """One line of counts for the periodic and the final log line."""
        return "running"

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event, signals: Sequence[signal.Signals] = STOP_SIGNALS
) -> Iterator[threading.Event]:
    """While inside, each of ``signals`` sets ``stop`` (the previous handlers come back on
    exit). Call it from the main thread, as Python's ``signal.signal`` requires."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def handler(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # a full pipe already holds a stop request
            os.write(write_fd, bytes([signum]))

    def watch() -> None:
        while data := os.read(read_fd, 64):  # b"" once the write end is closed
            for signum in data:
                log.info("received %s; stopping", signal.Signals(signum).name)
                stop.set()

    watcher = threading.Thread(target=watch, name="stop-on-signals", daemon=True)
    watcher.start()
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        os.close(write_fd)
        watcher.join(5)
        os.close(read_fd)


def run_until_signalled(service: Service) -> None:
    """``service.run_forever()``, stopping cleanly on SIGTERM or SIGINT."""
    with stop_on_signals(service.stop_event):
        service.run_forever()
