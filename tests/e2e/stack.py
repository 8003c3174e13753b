"""Run gateway and ingest as real processes (``python -m softplace_cli ...``) so tests can
kill -9 and restart them, against the session's mosquitto and influxd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from softplace.settings import MqttSettings
from softplace.storage.influx import InfluxStore


def write_registry(path: Path, site: str, rooms: int, devices_per_room: int = 1) -> list[str]:
    """A one-building registry with ``rooms`` rooms; returns the device ids."""
    devices: list[str] = []
    room_list = []
    for r in range(rooms):
        room_devices = [f"dev-{r}-{d}" for d in range(devices_per_room)]
        devices += room_devices
        room_list.append({"id": f"room-{r}", "kind": "office", "area_m2": 10 + r,
                          "capacity": 6, "devices": room_devices})
    registry = {"version": 1, "sites": [{
        "id": site, "district": "d1", "timezone": "Europe/Paris",
        "opening_hours": {"mon": ["08:00-18:00"]},
        "buildings": [{"id": "b1", "floors": [{"id": "f0", "rooms": room_list}]}],
    }]}
    path.write_text(yaml.safe_dump(registry))
    return devices


class Stack:
    def __init__(self, workdir: Path, site: str, registry: Path, broker: MqttSettings,
                 influx: InfluxStore, upstream: MqttSettings | None = None) -> None:
        self.workdir = workdir
        self.config = workdir / "softplace.yaml"
        settings: dict[str, Any] = {
            "registry": str(registry),
            "mqtt": {"url": broker.url, "protocol": "5"},
            "influxdb": {"url": influx.settings.url, "database": influx.settings.database,
                         "timeout_s": 5},
            "storage": {"backend": "influxdb"},
            # a batch lost with a crashed broker comes again after 2 s, not the default 30
            "gateway": {"site": site, "state_dir": str(workdir / "gateway-state"),
                        "upstream_ack_timeout_s": 2},
            # A shared group keeps handing messages to offline members' sessions, so every
            # test gets its own group and client ids, as separate deployments would.
            "ingest": {"shared_group": f"ingest-{workdir.name}",
                       "client_id": f"ingest-{workdir.name}", "batch_size": 100,
                       "batch_interval_s": 0.2, "max_backoff_s": 2},
        }
        if upstream is not None:
            settings["gateway"]["upstream"] = {"url": upstream.url, "protocol": "5"}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._settings = settings
        self._write_config(settings)

    def _write_config(self, settings: dict[str, Any]) -> None:
        self.config.write_text(yaml.safe_dump(settings))

    def start(self, name: str, *args: str, env: dict[str, str] | None = None,
              ready: str | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        command = [sys.executable, "-m", "softplace_cli", "-v", "--config", str(self.config), *args]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **(env or {}), "COLUMNS": "200"},
            )
        self.processes[name] = process
        if ready:
            wait_for(lambda: ready in log.read_text(errors="replace"), 30,
                     f"{name} never logged {ready!r}: {self.log(name)[-3000:]}",
                     process=process)
        return process

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.kill(process.pid, sig)
        process.wait(20)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)


def wait_for(condition: Callable[[], bool], timeout: float, message: str,
             process: subprocess.Popen[bytes] | None = None,
             describe: Callable[[], str] | None = None) -> None:
    """Poll ``condition`` until ``timeout``; the failure says ``message`` and, if given,
    what ``describe`` finds then (counts, a log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}: {message}")
        time.sleep(0.1)
    raise AssertionError(f"{message}: {describe()}" if describe is not None else message)
