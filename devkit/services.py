"""Private mosquitto and influxd processes for tests and benchmarks.

Each runs from Debian's package binary on a free 127.0.0.1 port with its own temporary
directory, and is stopped by PID. A missing binary is an error that says how to install
it, never a skip: CI must run these tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from devkit.embedded_broker import free_port
from softplace.settings import InfluxSettings, MqttSettings

INSTALL_HINT = "install it with: apt-get install -y mosquitto influxdb (scripts/test.sh does)"


class ServiceError(RuntimeError):
    pass


def _binary(name: str, candidates: tuple[str, ...]) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in candidates:
        if Path(candidate).exists():
            return candidate
    raise ServiceError(f"{name} not found on PATH; {INSTALL_HINT}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServiceError(f"port {port} not open after {timeout}s: {log.read_text()[-2000:]}")


class _Service:
    name = "service"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / f"{self.name}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True,
            )
        try:
            self._ready()
        except ServiceError as err:
            self.stop()
            raise ServiceError(f"{self.name} did not start: {err}") from err

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServiceError(f"{self.name} is not running")
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Mosquitto(_Service):
    """mosquitto 2.x with persistence, unlimited queues and anonymous access on loopback."""

    name = "mosquitto"

    def __init__(self, workdir: Path, acl: str | None = None) -> None:
        super().__init__(workdir)
        self.binary = _binary("mosquitto", ("/usr/sbin/mosquitto",))
        self.config = self.workdir / "mosquitto.conf"
        # as root, mosquitto drops to the "mosquitto" user, which cannot write our
        # temporary directory: persistence would silently be off
        lines = [
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            "persistent_client_expiration 1d",
            *([f"acl_file {self._write_acl(acl)}"] if acl is not None else []),
            "log_type error", "log_type warning", "log_type notice",
            f"log_dest file {self.log}",
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def _write_acl(self, acl: str) -> Path:
        path = self.workdir / "acl"
        path.write_text(acl)
        return path

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config)]

    def _ready(self) -> None:
        assert self.process is not None
        _wait_for_port(self.port, self.process, self.log, 10)

    @property
    def settings(self) -> MqttSettings:
        return MqttSettings(url=f"mqtt://127.0.0.1:{self.port}")


class Influxd(_Service):
    """influxd 1.x (Debian's 1.6.7) with its HTTP API on loopback, no auth, no reporting."""

    name = "influxd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.binary = _binary("influxd", ("/usr/bin/influxd",))
        self.rpc_port = free_port()
        self.config = self.workdir / "influxdb.conf"
        data = self.workdir / "data"
        self.config.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{data}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{data}/data"\n  wal-dir = "{data}/wal"\n'
            '  wal-fsync-delay = "0s"\n  query-log-enabled = false\n'
            "  trace-logging-enabled = false\n"
            '[retention]\n  enabled = true\n  check-interval = "30m"\n'
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  enabled = true\n  bind-address = "127.0.0.1:{self.port}"\n'
            "  auth-enabled = false\n  log-enabled = false\n"
            "[subscriber]\n  enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
        )

    def _command(self) -> list[str]:
        return [self.binary, "-config", str(self.config)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> None:
        assert self.process is not None
        _wait_for_port(self.port, self.process, self.log, 30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return
            time.sleep(0.1)
        raise ServiceError("no answer on /ping")

    def settings_for(self, database: str) -> InfluxSettings:
        return InfluxSettings(url=self.url, database=database, timeout_s=10)
