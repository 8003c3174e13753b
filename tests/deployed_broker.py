"""The real mosquitto running deploy/mosquitto's configuration, started through its own
entrypoint (accounts, ACL and TLS listener built the way the compose broker builds them),
on free loopback ports; and small paho probes that report the broker's answers."""

from __future__ import annotations

import getpass
import os
import queue
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devkit.embedded_broker import free_port
from provision import core

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "mosquitto"
SERVICE_PASSWORD = "svc-secret"
INSTALLER_PASSWORD = "installer-secret"
SITES = ("s", "other")
INSTALLER = "softplace-installer"
SERVICES = {
    **{f"softplace-gateway-{site}": SERVICE_PASSWORD for site in SITES},
    "softplace-ingest": SERVICE_PASSWORD,
    "softplace-detector": SERVICE_PASSWORD,
    "softplace-health": SERVICE_PASSWORD,
    INSTALLER: INSTALLER_PASSWORD,
}
TIMEOUT_S = 10


@dataclass
class DeployedBroker:
    """``devices``: device id -> (site, password); their accounts and ACL come from
    provision.core, as `softplace device add` writes them."""

    workdir: Path
    devices: dict[str, tuple[str, str]]
    tls_certs: Path | None = None
    devices_from: Path | None = None  # a broker_dir `softplace device add` wrote instead
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        for sub in ("config", "data", "devices"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        passwd = acl = ""
        for device, (site, password) in self.devices.items():
            passwd += core.password_line(device, password, os.urandom(core.SALT_BYTES)) + "\n"
            acl += core.acl_entries(site, device) + "\n"
        if self.devices_from is not None:
            passwd = (self.devices_from / "passwd").read_text()
            acl = (self.devices_from / "acl").read_text()
        (self.workdir / "devices" / "passwd").write_text(passwd)
        (self.workdir / "devices" / "acl").write_text(acl)
        text = (DEPLOY / "mosquitto.conf").read_text()
        text = text.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        text = text.replace("/mosquitto/config/", f"{self.workdir}/config/").replace(
            "/mosquitto/data/", f"{self.workdir}/data/")
        text = re.sub(r"^log_dest .*$", f"log_dest file {self.workdir}/mosquitto.log", text,
                      flags=re.MULTILINE)
        text += f"user {getpass.getuser()}\n"  # as root, mosquitto would drop to "mosquitto"
        self.config = self.workdir / "config" / "mosquitto.conf"
        self.config.write_text(text)

    @property
    def environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "MQTT_SERVICE_PASSWORD": SERVICE_PASSWORD,
            "MQTT_INSTALLER_PASSWORD": INSTALLER_PASSWORD,
            "SOFTPLACE_SITE": " ".join(SITES),
            "SOFTPLACE_BROKER_CONFIG_DIR": str(self.workdir / "config"),
            "SOFTPLACE_BROKER_DEVICES_DIR": str(self.workdir / "devices"),
            "SOFTPLACE_BROKER_CERTS_DIR": str(self.tls_certs or self.workdir / "no-certs"),
            "SOFTPLACE_BROKER_BASE_ACL": str(DEPLOY / "acl"),
            "SOFTPLACE_BROKER_TLS_PORT": str(self.tls_port),
            "SOFTPLACE_BROKER_TLS_BIND": "127.0.0.1",
            "SOFTPLACE_BROKER_EXEC": "1",
        }

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["sh", str(DEPLOY / "entrypoint.sh"), "mosquitto", "-c", str(self.config)],
            env=self.environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            probe = Probe.connect(self.port, "softplace-health", SERVICE_PASSWORD)
            if probe.connected:
                probe.close()
                return
            assert self.process.poll() is None, self.process.stderr and self.process.stderr.read()
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(TIMEOUT_S)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


def deployed(workdir: Path, devices: dict[str, tuple[str, str]],
             tls_certs: Path | None = None,
             devices_from: Path | None = None) -> Iterator[DeployedBroker]:
    broker = DeployedBroker(workdir, devices, tls_certs, devices_from)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Probe:
    """One MQTT 5 connection whose every broker answer is kept (reason codes, messages)."""

    def __init__(self, client_id: str = "") -> None:
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id, protocol=paho.MQTTv5)
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.disconnected = False
        self.assigned_id: str | None = None
        self.connected = False
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.put(list(codes))
        self.client.on_publish = lambda _c, _u, _m, code, _p: self.pubacks.put(code)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, _c: paho.Client, _u: object, _f: object, code: ReasonCode,
                    props: Properties | None) -> None:
        assigned = getattr(props, "AssignedClientIdentifier", None)
        self.assigned_id = assigned if isinstance(assigned, str) else None
        self.connack.put(code)

    def _on_disconnect(self, *_args: object) -> None:
        self.disconnected = True

    @classmethod
    def connect(cls, port: int, user: str | None, password: str | None = None,
                client_id: str = "", tls_ca: Path | None = None) -> Probe:
        probe = cls(client_id)
        if user is not None:
            probe.client.username_pw_set(user, password)
        if tls_ca is not None:
            probe.client.tls_set(ca_certs=str(tls_ca))
        probe.client.reconnect_delay_set(60, 60)  # a refused probe stays refused
        try:
            probe.client.connect("127.0.0.1", port)
        except OSError:
            return probe
        probe.client.loop_start()
        try:
            code = probe.connack.get(timeout=TIMEOUT_S)
        except queue.Empty:
            probe.close()
            return probe
        probe.connected = not code.is_failure
        if not probe.connected:
            probe.close()
        return probe

    def subscribe(self, topic_filter: str) -> bool:
        """True when the broker granted the subscription."""
        self.client.subscribe(topic_filter, qos=1)
        codes = self.subacks.get(timeout=TIMEOUT_S)
        return all(not c.is_failure for c in codes)

    def publish(self, topic: str, payload: bytes = b"m", retain: bool = False) -> bool:
        """True when the broker accepted the QoS 1 publish (PUBACK without failure)."""
        self.client.publish(topic, payload, qos=1, retain=retain)
        return not self.pubacks.get(timeout=TIMEOUT_S).is_failure

    def received(self, wait_s: float = 1.0) -> list[tuple[str, bytes, bool]]:
        out = []
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            out.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


running = contextmanager(deployed)  # ``with running(...) as broker:``
