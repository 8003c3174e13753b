"""``softplace doctor`` against the real mosquitto and influxd, each fault provoked."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from devkit.embedded_broker import free_port
from devkit.services import Influxd, Mosquitto
from gateway.settings import GatewaySettings
from privacy.settings import PrivacySettings
from softplace import topics
from softplace.errors import ConfigError
from softplace.messages import DeviceReading
from softplace.mqtt import connect_async, make_client
from softplace.registry import load_registry
from softplace.schema import SeriesName
from softplace.settings import (
    InfluxSettings,
    MqttSettings,
    RetentionSettings,
    StorageSettings,
)
from softplace.storage.base import Sample
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore
from softplace_cli import cli
from softplace_cli.doctor import Probe, Status, diagnose
from softplace_cli.settings import Settings
from tests.e2e.stack import wait_for

pytestmark = pytest.mark.services
NOW = 1_800_000_000.0
FAST = Probe(clock=lambda: NOW, broker_timeout_s=5, skew_listen_s=0.3)
TIMEOUT_S = 20
REGISTRY = load_registry(None)
DEVICES = {d: (site.id, placed.room.id) for site in REGISTRY.sites
           for d, placed in site.device_rooms().items()}


def _settings(tmp_path: Path, mqtt: MqttSettings, **changes: object) -> Settings:
    base = Settings(
        mqtt=mqtt,
        storage=StorageSettings(sqlite_path=tmp_path / "store.sqlite"),
        gateway=GatewaySettings(state_dir=tmp_path / "gateway"),
        privacy=PrivacySettings(ledger_path=tmp_path / "ledger.sqlite"),
    )
    return base.model_copy(update=changes)


def _statuses(settings: Settings, probe: Probe = FAST) -> dict[str, tuple[Status, str]]:
    return {c.name: (c.status, c.detail) for c in diagnose(lambda: settings, probe)}


def _health(device: str, seen: float) -> Sample:
    site, room = DEVICES[device]
    return Sample(SeriesName.SENSOR_HEALTH, {"site": site, "device": device, "room": room},
                  {"online": 1, "last_seen": seen}, int(seen * 1000))


def _healthy_store(path: Path, silent: str | None = None) -> None:
    store = SqliteStore(path)
    store.apply_retention(RetentionSettings().policies())
    store.write([_health(d, NOW - (3600 if d == silent else 60)) for d in DEVICES])
    store.close()


def test_doctor_healthy_sqlite_installation_has_no_failure(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    _healthy_store(tmp_path / "store.sqlite")
    (tmp_path / "ledger.sqlite").touch()
    found = _statuses(_settings(tmp_path, mosquitto.settings))
    assert found["broker"][0] is Status.OK
    assert found["store"][0] is Status.OK
    assert found["sensors"] == (Status.OK, f"all {len(DEVICES)} reported within 900 s")
    assert found["privacy ledger"][0] is Status.OK
    assert found["outbox disk"][0] is Status.OK
    assert all(status is not Status.FAIL for status, _ in found.values())


def test_doctor_missing_store_fails_and_is_not_created(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    found = _statuses(_settings(tmp_path, mosquitto.settings))
    assert found["store"][0] is Status.FAIL
    assert found["sensors"][0] is Status.WARN
    assert found["privacy ledger"][0] is Status.WARN
    assert not (tmp_path / "store.sqlite").exists()


def test_doctor_silent_sensor_is_named(tmp_path: Path, mosquitto: Mosquitto) -> None:
    silent = sorted(DEVICES)[0]
    _healthy_store(tmp_path / "store.sqlite", silent=silent)
    status, detail = _statuses(_settings(tmp_path, mosquitto.settings))["sensors"]
    assert status is Status.WARN
    assert detail.startswith(f"1 of {len(DEVICES)} silent") and silent in detail


def test_doctor_bad_configuration_fails_alone() -> None:
    def load() -> Settings:
        raise ConfigError("softplace.yaml:3: mqtt.url: must look like mqtt://host:1883")

    checks = diagnose(load, FAST)
    assert [(c.name, c.status) for c in checks] == [("configuration", Status.FAIL)]
    assert "softplace.yaml:3" in checks[0].detail


def test_doctor_bad_registry_fails_and_skips_what_needs_it(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text("version: 1\nsites: []\n")
    found = _statuses(_settings(tmp_path, mosquitto.settings, registry=registry))
    assert found["registry"][0] is Status.FAIL
    assert "clock skew" not in found and "sensors" not in found
    assert found["broker"][0] is Status.OK


def test_doctor_outbox_disk_below_the_thresholds(tmp_path: Path, mosquitto: Mosquitto) -> None:
    free = shutil.disk_usage(tmp_path).free
    settings = _settings(tmp_path, mosquitto.settings)
    tight = Probe(clock=lambda: NOW, skew_listen_s=0.1, disk_warn_bytes=free * 4)
    full = Probe(clock=lambda: NOW, skew_listen_s=0.1, disk_fail_bytes=free * 4,
                 disk_warn_bytes=free * 8)
    assert _statuses(settings, tight)["outbox disk"][0] is Status.WARN
    assert _statuses(settings, full)["outbox disk"][0] is Status.FAIL
    assert not (tmp_path / "gateway").exists()  # measured on its nearest existing parent


def test_doctor_unreachable_broker_fails(tmp_path: Path) -> None:
    nobody = MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}")
    found = _statuses(_settings(tmp_path, nobody))
    assert found["broker"][0] is Status.FAIL
    assert "cannot reach" in found["broker"][1]
    assert found["clock skew"][0] is Status.WARN


@pytest.fixture(scope="module")
def password_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto-auth"))
    passwords = broker.workdir / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "doctor", "right"],
                   check=True, capture_output=True)
    passwords.chmod(0o600)
    text = broker.config.read_text().replace("allow_anonymous true",
                                             f"allow_anonymous false\npassword_file {passwords}")
    broker.config.write_text(text)
    broker.start()
    yield broker
    broker.stop()


def test_doctor_wrong_broker_credentials_fail(tmp_path: Path, password_broker: Mosquitto) -> None:
    url = password_broker.settings.url
    wrong = MqttSettings(url=url, username="doctor", password="wrong")  # type: ignore[arg-type]
    right = MqttSettings(url=url, username="doctor", password="right")  # type: ignore[arg-type]
    refused = _statuses(_settings(tmp_path, wrong))["broker"]
    assert refused[0] is Status.FAIL
    assert "refused" in refused[1]
    assert _statuses(_settings(tmp_path, right))["broker"][0] is Status.OK


def _publish_live(mosquitto: Mosquitto, offset_s: float, stop: threading.Event) -> None:
    client = make_client(mosquitto.settings, "doctor-test-sensor", persistent=False)
    connect_async(client, mosquitto.settings, persistent=False)
    wait_for(client.is_connected, TIMEOUT_S, "the test sensor never connected")
    device = sorted(DEVICES)[0]
    site = DEVICES[device][0]
    seq = 0
    while not stop.is_set():
        reading = DeviceReading(device=device, boot=1, seq=seq, ts=NOW + offset_s, synced=True,
                                count=1, sensor="pir")
        client.publish(topics.device_reading(site, device), reading.model_dump_json().encode())
        seq += 1
        stop.wait(0.05)
    client.disconnect()
    client.loop_stop()


@pytest.mark.parametrize(("offset_s", "expected"), [(0.4, Status.OK), (30.0, Status.WARN)])
def test_doctor_clock_skew_against_live_readings(
    tmp_path: Path, mosquitto: Mosquitto, offset_s: float, expected: Status,
) -> None:
    stop = threading.Event()
    sensor = threading.Thread(target=_publish_live, args=(mosquitto, offset_s, stop))
    sensor.start()
    try:
        found = _statuses(_settings(tmp_path, mosquitto.settings),
                          Probe(clock=lambda: NOW, skew_listen_s=5))
    finally:
        stop.set()
        sensor.join(TIMEOUT_S)
    assert found["clock skew"][0] is expected, found["clock skew"]
    assert f"{offset_s:+.1f} s" in found["clock skew"][1]


def _influx_settings(tmp_path: Path, mosquitto: Mosquitto, influx: InfluxSettings) -> Settings:
    return _settings(tmp_path, mosquitto.settings,
                     storage=StorageSettings(backend="influxdb"), influxdb=influx)


def test_doctor_influx_database_and_retention_faults(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd,
) -> None:
    influx = influxd.settings_for(f"doctor_{int(time.time() * 1000)}")
    settings = _influx_settings(tmp_path, mosquitto, influx)
    missing = _statuses(settings)
    assert missing["influxdb"][0] is Status.OK
    assert missing["store"][0] is Status.FAIL
    store = InfluxStore(influx)
    try:
        store.ensure_database()
        assert _statuses(settings)["retention"][0] is Status.FAIL  # no policy yet
        store.apply_retention(RetentionSettings(raw_days=7).policies())
        wrong = _statuses(settings)["retention"]
        assert wrong[0] is Status.WARN and "raw 168h0m0s (want 30d)" in wrong[1]
        store.apply_retention(RetentionSettings().policies())
        assert _statuses(settings)["retention"][0] is Status.OK
    finally:
        store.close()


def test_doctor_influx_unreachable_fails(tmp_path: Path, mosquitto: Mosquitto) -> None:
    influx = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert _statuses(_influx_settings(tmp_path, mosquitto, influx))["influxdb"][0] is Status.FAIL


def test_doctor_command_exits_non_zero_on_a_failure(tmp_path: Path, mosquitto: Mosquitto) -> None:
    env = {"SOFTPLACE_MQTT__URL": mosquitto.settings.url,
           "SOFTPLACE_STORAGE__SQLITE_PATH": str(tmp_path / "none.sqlite"),
           "SOFTPLACE_GATEWAY__STATE_DIR": str(tmp_path / "gateway")}
    result = CliRunner().invoke(cli, ["doctor", "--listen-s", "0.1"], env=env)
    assert result.exit_code == 1, result.output
    assert "does not exist" in result.output
    _healthy_store(tmp_path / "none.sqlite")
    assert CliRunner().invoke(cli, ["doctor", "--listen-s", "0.1"], env=env).exit_code == 0




def test_doctor_ledger_resolves_beside_the_settings_file(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "ledger.sqlite").touch()  # where the privacy commands keep it
    settings = _settings(tmp_path, mosquitto.settings,
                         privacy=PrivacySettings(ledger_path=Path("ledger.sqlite")))
    checks = {c.name: c for c in diagnose(lambda: settings, FAST, etc / "softplace.yaml")}
    assert checks["privacy ledger"].status is Status.OK
    assert checks["privacy ledger"].detail == f"{etc / 'ledger.sqlite'} present"
    # without a settings file, a relative path is the working directory's
    cwd_checks = {c.name: c for c in diagnose(lambda: settings, FAST)}
    assert cwd_checks["privacy ledger"].status is Status.WARN

