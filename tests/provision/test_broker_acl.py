"""The deploy broker (deploy/mosquitto, started through its entrypoint) on the real
mosquitto, with device accounts and ACL entries as `softplace device add` makes them:
every probe a device could try is refused, and the services get what they need."""

from __future__ import annotations

import queue
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision import core
from tests.deployed_broker import (
    INSTALLER,
    INSTALLER_PASSWORD,
    SERVICE_PASSWORD,
    SERVICES,
    DeployedBroker,
    Probe,
    deployed,
    running,
)

pytestmark = pytest.mark.services

DEVICES = {"dev-a": ("s", "pw-a"), "dev-b": ("s", "pw-b"), "dev-x": ("other", "pw-x")}
READ_WAIT_S = 0.7


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedBroker]:
    yield from deployed(tmp_path, DEVICES)


def _as(broker: DeployedBroker, user: str, client_id: str = "") -> Probe:
    password = DEVICES[user][1] if user in DEVICES else SERVICES[user]
    probe = Probe.connect(broker.port, user, password, client_id=client_id)
    assert probe.connected, f"{user} could not connect"
    return probe


def _observer(broker: DeployedBroker, user: str, topic_filter: str) -> Probe:
    probe = _as(broker, user)
    assert probe.subscribe(topic_filter), f"{user} may read {topic_filter}"
    return probe


def _refused_publish(broker: DeployedBroker, user: str, topic: str, observer: Probe,
                     retain: bool = False) -> None:
    """``user`` publishes to ``topic``: the broker refuses and ``observer`` sees nothing."""
    probe = _as(broker, user)
    try:
        accepted = probe.publish(topic, b'{"probe": 1}', retain=retain)
    except queue.Empty:  # no PUBACK: the broker dropped the connection, a refusal too
        accepted = False
    probe.close()
    assert not accepted, f"{user} may not publish {topic}"
    assert observer.received(READ_WAIT_S) == [], f"{topic} from {user} got through"


def test_broker_refuses_anonymous_and_wrong_passwords(broker: DeployedBroker) -> None:
    assert not Probe.connect(broker.port, None).connected
    assert not Probe.connect(broker.port, "dev-a", "pw-b").connected
    assert not Probe.connect(broker.port, "softplace-ingest", "pw-a").connected
    assert not Probe.connect(broker.port, "softplace-service", SERVICE_PASSWORD).connected


def test_broker_device_publishes_its_own_reading_and_status(broker: DeployedBroker) -> None:
    gateway = _observer(broker, "softplace-gateway-s", "softplace/v1/s/dev/+/+")
    device = _as(broker, "dev-a")
    assert device.publish("softplace/v1/s/dev/dev-a/reading", b"r")
    assert device.publish("softplace/v1/s/dev/dev-a/status", b"st", retain=True)
    got = sorted((t, p) for t, p, _r in gateway.received(READ_WAIT_S))
    assert got == [("softplace/v1/s/dev/dev-a/reading", b"r"),
                   ("softplace/v1/s/dev/dev-a/status", b"st")]


def test_broker_device_cannot_publish_as_another_device(broker: DeployedBroker) -> None:
    gateway = _observer(broker, "softplace-gateway-s", "softplace/v1/s/dev/+/+")
    for leaf in ("reading", "status"):
        _refused_publish(broker, "dev-a", f"softplace/v1/s/dev/dev-b/{leaf}", gateway)


def test_broker_device_cannot_publish_under_another_site(broker: DeployedBroker) -> None:
    gateway = _observer(broker, "softplace-gateway-other", "softplace/v1/other/dev/+/+")
    for topic in ("softplace/v1/other/dev/dev-a/reading", "softplace/v1/other/dev/dev-x/reading",
                  "softplace/v1/other/dev/dev-a/status"):
        _refused_publish(broker, "dev-a", topic, gateway)


def test_broker_device_cannot_write_room_deadletter_health_ack_or_config(
    broker: DeployedBroker,
) -> None:
    ingest = _observer(broker, "softplace-ingest", "softplace/v1/+/+/#")
    for topic in ("softplace/v1/s/room/hall", "softplace/v1/s/deadletter",
                  "softplace/v1/s/health/dev-a"):
        _refused_publish(broker, "dev-a", topic, ingest)
    victim = _observer(broker, "dev-b", "softplace/v1/s/dev/dev-b/ack")
    _refused_publish(broker, "dev-a", "softplace/v1/s/dev/dev-b/ack", victim)
    own_ack = _observer(broker, "dev-a", "softplace/v1/s/dev/dev-a/ack")
    _refused_publish(broker, "dev-a", "softplace/v1/s/dev/dev-a/ack", own_ack)
    installer = _observer(broker, INSTALLER, "softplace/v1/+/dev/+/config")
    _refused_publish(broker, "dev-a", "softplace/v1/s/dev/dev-a/config", installer, retain=True)


def test_broker_device_reads_only_its_own_config_and_ack(broker: DeployedBroker) -> None:
    installer = _as(broker, INSTALLER)
    for device in ("dev-a", "dev-b"):
        assert installer.publish(f"softplace/v1/s/dev/{device}/config", device.encode(),
                                 retain=True)
    gateway = _as(broker, "softplace-gateway-s")
    for device in ("dev-a", "dev-b"):
        assert gateway.publish(f"softplace/v1/s/dev/{device}/ack", b'{"v": 1}')
    spy = _as(broker, "dev-a")
    for topic_filter in ("#", "softplace/#", "softplace/v1/+/dev/+/config",
                         "softplace/v1/s/dev/dev-b/ack", "softplace/v1/s/room/+",
                         "softplace/v1/s/deadletter", "softplace/v1/s/dev/+/reading",
                         "$SYS/#"):
        spy.subscribe(topic_filter)  # mosquitto may grant the filter; it delivers nothing
    got = spy.received(READ_WAIT_S)  # once per filter that matches its own config
    assert got and set(got) == {("softplace/v1/s/dev/dev-a/config", b"dev-a", True)}, got
    # what another device, a gateway and ingest publish meanwhile does not reach it either
    other = _as(broker, "dev-b")
    assert other.publish("softplace/v1/s/dev/dev-b/reading", b"r")
    assert gateway.publish("softplace/v1/s/dev/dev-b/ack", b'{"v": 1}')
    assert gateway.publish("softplace/v1/s/room/hall", b"room")
    assert gateway.publish("softplace/v1/s/dev/dev-a/ack", b"mine")
    got = spy.received(READ_WAIT_S)
    assert got and set(got) == {("softplace/v1/s/dev/dev-a/ack", b"mine", False)}, got


def test_broker_client_id_takeover_of_each_service_is_refused(broker: DeployedBroker) -> None:
    for service in SERVICES:
        holder = _as(broker, service, client_id=service)
        thief = _as(broker, "dev-a", client_id=service)
        held = holder.received(READ_WAIT_S) == [] and not holder.disconnected
        thief.close()
        holder.close()
        assert held, f"dev-a took over the session of {service}"
    for suffix in ("-up", ""):
        for service in SERVICES:
            assert not Probe.connect(broker.port, "dev-a", "pw-b",
                                     client_id=service + suffix).connected


def test_broker_service_sessions_are_keyed_by_username(broker: DeployedBroker) -> None:
    """use_username_as_clientid: a second connection of the same account replaces the first,
    whatever client id it asks for (so one account holds one session)."""
    first = _as(broker, "softplace-ingest", client_id="ingest-a")
    second = _as(broker, "softplace-ingest", client_id="ingest-b")
    first.received(READ_WAIT_S)
    assert first.disconnected
    assert not second.disconnected
    second.close()


def test_broker_retained_reading_is_not_refused_by_mosquitto(broker: DeployedBroker) -> None:
    """Mosquitto 2.0 has no per-topic retain control (``retain_available`` is all or
    nothing, and status and config are retained): a device CAN leave a retained reading,
    so the gateway must ignore or dead-letter readings that arrive with retain set."""
    device = _as(broker, "dev-a")
    assert device.publish("softplace/v1/s/dev/dev-a/reading", b"stale", retain=True)
    gateway = _observer(broker, "softplace-gateway-s", "softplace/v1/s/dev/+/reading")
    assert gateway.received(READ_WAIT_S) == [("softplace/v1/s/dev/dev-a/reading", b"stale",
                                              True)]


def test_broker_services_get_what_they_need(broker: DeployedBroker) -> None:
    ingest = _observer(broker, "softplace-ingest", "$share/ingest/softplace/v1/+/room/+")
    gateway = _as(broker, "softplace-gateway-s")
    assert gateway.publish("softplace/v1/s/room/hall", b"3")
    assert gateway.publish("softplace/v1/s/deadletter", b"dl")
    assert ingest.received(READ_WAIT_S) == [("softplace/v1/s/room/hall", b"3", False)]
    assert not _as(broker, "softplace-gateway-s").publish("softplace/v1/other/room/hall")
    health = _observer(broker, "softplace-health", "$SYS/broker/uptime")
    assert health.received(2.0), "the compose healthcheck reads the broker's uptime"


def test_broker_loads_device_add_password_lines(broker: DeployedBroker, tmp_path: Path) -> None:
    """Lines from provision.core load into the real mosquitto (the fixture made them) and
    check against mosquitto_passwd's own output."""
    assert _as(broker, "dev-x").publish("softplace/v1/other/dev/dev-x/reading")
    passwd = tmp_path / "mp"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "dev-q", "secret q"], check=True)
    line = passwd.read_text().strip()
    assert core.check_password_line(line, "secret q")
    assert not core.check_password_line(line, "secret")


def test_broker_installer_publishes_retained_config(broker: DeployedBroker) -> None:
    installer = Probe.connect(broker.port, INSTALLER, INSTALLER_PASSWORD)
    assert installer.publish("softplace/v1/s/dev/dev-a/config", b'{"hold_s": 600}', retain=True)
    assert not installer.publish("softplace/v1/s/dev/dev-a/reading", b"x")


def _certificates(folder: Path) -> Path:
    """A private CA and a broker certificate for 127.0.0.1, as certs/README.md makes them."""
    folder.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=SoftPlace test CA", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
            "broker.key", "-out", "broker.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.crt")
    return folder


def test_broker_tls_listener_for_devices(tmp_path: Path) -> None:
    certs = _certificates(tmp_path / "certs")
    with running(tmp_path / "mq", DEVICES, tls_certs=certs) as broker:
        gateway = _observer(broker, "softplace-gateway-s", "softplace/v1/s/dev/+/reading")
        device = Probe.connect(broker.tls_port, "dev-a", "pw-a", tls_ca=certs / "ca.crt")
        assert device.connected, "TLS on the port the firmware defaults to"
        assert device.publish("softplace/v1/s/dev/dev-a/reading", b"tls")
        assert gateway.received(READ_WAIT_S) == [("softplace/v1/s/dev/dev-a/reading", b"tls",
                                                  False)]
        assert not Probe.connect(broker.tls_port, "dev-a", "pw-a").connected, "plain refused"
        assert not Probe.connect(broker.tls_port, None, tls_ca=certs / "ca.crt").connected
        assert (tmp_path / "mq" / "config" / "conf.d" / "tls.conf").exists()


def test_broker_without_certificates_runs_plain_only(broker: DeployedBroker) -> None:
    assert not (broker.workdir / "config" / "conf.d" / "tls.conf").exists()
    assert not Probe.connect(broker.tls_port, "dev-a", "pw-a").connected
