"""End to end through real processes: virtual sensors -> mosquitto -> gateway -> mosquitto
-> ingest -> influxd. Nothing lost, nothing doubled, whatever is killed."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.netfault import TcpRelay
from devkit.services import Influxd, Mosquitto
from devkit.virtual_sensor import VirtualSensor, firmware_config
from gateway.outbox import Outbox
from softplace.settings import MqttSettings
from softplace.storage.influx import InfluxStore
from tests.e2e.stack import Stack, wait_for, write_registry

pytestmark = [pytest.mark.services, pytest.mark.slow]
SITE = "e2e-site"
STEP_S = 10  # simulated seconds per step; the heartbeat makes every step one reading
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
Expected = Counter[tuple[str, int, int]]  # (room, time_ms, count)


class Fleet:
    """Virtual sensors (the firmware's core) that remember what they published."""

    def __init__(self, devices: list[str], broker: MqttSettings) -> None:
        config = firmware_config(site=SITE, heartbeat_s=STEP_S, hold_s=10, debounce_ms=0)
        self.sensors = [VirtualSensor(SITE, d, broker, config=config) for d in devices]
        self.expected: Expected = Counter()
        self.start_ts = int(time.time()) - 3600
        self.step = 0

    def connect(self) -> None:
        for sensor in self.sensors:
            sensor.connect(now_ts=self.start_ts)

    def play(self, steps: int, pause_s: float = 0.0) -> None:
        for _ in range(steps):
            ts = self.start_ts + self.step * STEP_S
            for r, sensor in enumerate(self.sensors):
                count = (self.step * 7 + r * 3) % 5
                (reading,) = sensor.observe(self.step * STEP_S * 1000, ts, count)
                # what the firmware core decided to report (its hold logic may differ)
                self.expected[(f"room-{r}", reading["ts"] * 1000, reading["count"])] += 1
            self.step += 1
            if pause_s:
                time.sleep(pause_s)

    def resend_overdue(self) -> None:
        """The firmware's resend timer: a reading no ack covered for ``ACK_RESEND_S`` goes
        out again. Without it a reading sent while no gateway was subscribed (the site
        broker lost its sessions) would wait for the sensor's next reconnect."""
        for sensor in self.sensors:
            sensor.poll()

    def wait_sent(self) -> None:
        wait_for(lambda: all(s.pending() == 0 for s in self.sensors), 60,
                 "virtual sensors could not deliver to the broker")

    def close(self) -> None:
        for sensor in self.sensors:
            sensor.close()


def tally(case: str, store: InfluxStore, fleet: Fleet, timeout: float = 90) -> None:
    """Wait for every reading to land (or the timeout), print the fault matrix's line for
    this case and assert nothing was lost or doubled."""
    found: Expected = Counter()

    def complete() -> bool:
        nonlocal found
        fleet.resend_overdue()
        found = landed(store, fleet.start_ts * 1000)
        return not fleet.expected - found

    with contextlib.suppress(AssertionError):
        wait_for(complete, timeout, "not every reading landed")
    time.sleep(1.0)  # anything doubled or late would show now
    found = landed(store, fleet.start_ts * 1000)
    lost = fleet.expected - found
    doubled = found - fleet.expected
    dead = store.query("deadletter", 0, FAR_FUTURE_MS, {"site": SITE})
    print(f"\nfault matrix, {case}: sent {sum(fleet.expected.values())}, landed "
          f"{sum(found.values())}, lost {sum(lost.values())}, doubled {sum(doubled.values())}, "
          f"dead-lettered {len(dead)}")
    assert not lost, f"{sum(lost.values())} lost, e.g. {list(lost)[:5]}"
    assert not doubled, f"{sum(doubled.values())} doubled, e.g. {list(doubled)[:5]}"


def landed(store: InfluxStore, start_ms: int) -> Expected:
    points = store.query("room_count", start_ms - 1, start_ms + 10**9, {"site": SITE})
    return Counter((p.tags["room"], p.time_ms, int(p.fields["count"])) for p in points)


def wait_landed(store: InfluxStore, fleet: Fleet, timeout: float = 90) -> Expected:
    found: Expected = Counter()

    def complete() -> bool:
        nonlocal found
        fleet.resend_overdue()
        found = landed(store, fleet.start_ts * 1000)
        return sum(found.values()) >= sum(fleet.expected.values())

    try:
        wait_for(complete, timeout, "not every reading landed")
    except AssertionError:
        missing = fleet.expected - found
        raise AssertionError(f"{sum(missing.values())} readings missing, e.g. "
                             f"{list(missing)[:5]}") from None
    time.sleep(1.0)  # anything doubled or late would show now
    return landed(store, fleet.start_ts * 1000)


@pytest.fixture
def stack(tmp_path: Path, mosquitto: Mosquitto, influx_store: InfluxStore) -> Iterator[Stack]:
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=4)
    running = Stack(tmp_path, SITE, registry, mosquitto.settings, influx_store)
    yield running
    running.stop_all()


@pytest.fixture
def fleet(mosquitto: Mosquitto) -> Iterator[Fleet]:
    sensors = Fleet([f"dev-{r}-0" for r in range(4)], mosquitto.settings)
    sensors.connect()
    yield sensors
    sensors.close()


def test_pipeline_every_reading_lands_exactly_once_and_bad_input_is_dead_lettered(
    stack: Stack, fleet: Fleet, influx_store: InfluxStore
) -> None:
    stack.start("ingest", "ingest", ready="ingest subscribed")
    stack.start("gateway", "gateway", ready="connected to the site broker")
    fleet.play(60)
    fleet.sensors[0].publish_raw(b"{not json")
    fleet.sensors[1].publish_raw(b'{"v": 1, "device": "dev-1-0", "boot": 1, "seq": 9999, '
                                 b'"ts": 1, "synced": true, "count": -4, "sensor": "virtual"}')
    fleet.play(60)
    assert wait_landed(influx_store, fleet) == fleet.expected
    reasons = {p.tags["reason"] for p in influx_store.query("deadletter", 0, FAR_FUTURE_MS)}
    assert reasons == {"malformed_json", "implausible_count"}
    health = influx_store.query("sensor_health", 0, FAR_FUTURE_MS, {"site": SITE})
    assert {p.tags["device"] for p in health} == {s.device for s in fleet.sensors}
    assert all("device" not in p.tags for p in influx_store.query("room_count", 0, FAR_FUTURE_MS))

    # a sensor that vanishes (power cut): the broker publishes its last will, the gateway
    # marks it offline and the facilities' health series says so
    vanished = fleet.sensors[2]
    vanished.close(clean=False)

    def marked_offline() -> bool:
        points = influx_store.query("sensor_health", 0, FAR_FUTURE_MS,
                                    {"site": SITE, "device": vanished.device})
        return bool(points) and points[-1].fields["online"] == 0

    wait_for(marked_offline, 90, "the last will never reached sensor_health")


def test_pipeline_ingest_killed_mid_stream_loses_and_doubles_nothing(
    stack: Stack, fleet: Fleet, influx_store: InfluxStore
) -> None:
    stack.start("ingest", "ingest", ready="ingest subscribed")
    stack.start("gateway", "gateway", ready="connected to the site broker")
    fleet.play(50)
    wait_for(lambda: sum(landed(influx_store, fleet.start_ts * 1000).values()) > 40, 30,
             "nothing landed before the kill")
    player = threading.Thread(target=fleet.play, args=(100, 0.01))
    player.start()
    time.sleep(0.3)
    stack.kill("ingest")  # SIGKILL mid-stream: whatever it had not acknowledged comes back
    player.join()
    fleet.wait_sent()
    time.sleep(1)
    stack.start("ingest", "ingest", ready="ingest subscribed")
    tally("ingest killed -9", influx_store, fleet)


def test_pipeline_rides_out_an_influxd_outage(
    stack: Stack, fleet: Fleet, influx_store: InfluxStore, influxd: Influxd
) -> None:
    stack.start("ingest", "ingest", ready="ingest subscribed")
    stack.start("gateway", "gateway", ready="connected to the site broker")
    fleet.play(30)
    wait_for(lambda: sum(landed(influx_store, fleet.start_ts * 1000).values()) >= 120, 30,
             "the first readings did not land")
    influxd.stop()
    try:
        fleet.play(80)
        fleet.wait_sent()
        wait_for(lambda: "store write failed" in stack.log("ingest"), 30,
                 "ingest never noticed the outage")
        time.sleep(2)
    finally:
        influxd.start()
    tally("influxd stopped", influx_store, fleet)


def test_pipeline_two_ingest_processes_share_the_stream(
    stack: Stack, fleet: Fleet, influx_store: InfluxStore
) -> None:
    stack.start("ingest-a", "ingest", ready="ingest subscribed",
                env={"SOFTPLACE_INGEST__CLIENT_ID": f"ingest-a-{stack.workdir.name}"})
    stack.start("ingest-b", "ingest", ready="ingest subscribed",
                env={"SOFTPLACE_INGEST__CLIENT_ID": f"ingest-b-{stack.workdir.name}"})
    stack.start("gateway", "gateway", ready="connected to the site broker")
    fleet.play(100)
    assert wait_landed(influx_store, fleet) == fleet.expected
    stack.kill("ingest-a", 15)
    stack.kill("ingest-b", 15)
    written = [_last_points(stack.log(name)) for name in ("ingest-a", "ingest-b")]
    assert all(n > 0 for n in written), f"one process got nothing: {written}"
    assert sum(written) >= sum(fleet.expected.values())


def _last_points(log: str) -> int:
    """``points written N`` from ingest's final summary (rich may wrap the line)."""
    tail = log[log.rindex("ingest stopped:"):] if "ingest stopped:" in log else ""
    assert tail, f"no final count in the log: {log[-2000:]}"
    return int(" ".join(tail.split()).split("points written ")[1].split(",")[0])


def test_pipeline_gateway_buffers_on_disk_while_upstream_is_down_and_replays_in_order(
    tmp_path: Path, mosquitto: Mosquitto, influx_store: InfluxStore, fleet: Fleet
) -> None:
    """The gateway reaches its upstream broker through a relay we cut; meanwhile it is
    also killed -9 and restarted, so only its on-disk outbox can carry the readings."""
    import paho.mqtt.client as paho

    from softplace.messages import RoomReading, RoomReadingBatch
    from softplace.mqtt import connect_async, make_client

    upstream = Mosquitto(tmp_path / "upstream")
    upstream.start()
    relay = TcpRelay(upstream.port)
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=4)
    stack = Stack(tmp_path, SITE, registry, mosquitto.settings, influx_store,
                  upstream=MqttSettings(url=f"mqtt://127.0.0.1:{relay.port}"))
    arrivals: list[RoomReading] = []
    recorder = make_client(upstream.settings, f"recorder-{tmp_path.name}")

    def record(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        arrivals.extend(RoomReadingBatch.model_validate_json(message.payload).readings)

    recorder.on_message = record
    recorder.on_connect = lambda client, *args: client.subscribe(f"softplace/v1/{SITE}/batch", 1)
    try:
        connect_async(recorder, upstream.settings)
        up_env = {"SOFTPLACE_MQTT__URL": upstream.settings.url}
        stack.start("ingest", "ingest", env=up_env, ready="ingest subscribed")
        stack.start("gateway", "gateway", ready="connected upstream")
        fleet.play(20)
        wait_for(lambda: len(arrivals) >= 80, 30, "nothing crossed before the outage")
        relay.cut()
        fleet.play(30)
        wait_for(lambda: stack.log("gateway").count("dead-lettered") == 0 and
                 _outbox_size(tmp_path) >= 100, 30, "the gateway did not buffer on disk")
        stack.kill("gateway")  # whatever it buffered must survive this
        stack.start("gateway", "gateway", ready="connected to the site broker")
        fleet.play(30)
        fleet.wait_sent()
        relay.restore()
        tally("upstream link cut, gateway killed -9 meanwhile", influx_store, fleet)
        wait_for(lambda: len(set(arrivals)) >= 320, 30, "the recorder missed the replay")
        # a batch re-sent after a reconnect arrives again: order is that of first arrivals
        first = list(dict.fromkeys(arrivals))
        for room in {r.room for r in first}:
            times = [r.ts for r in first if r.room == room]
            assert times == sorted(times), f"{room} replayed out of order"
    finally:
        recorder.disconnect()
        recorder.loop_stop()
        stack.stop_all()
        relay.close()
        upstream.stop()


def _outbox(workdir: Path) -> Outbox:
    """The gateway process's outbox file, read alongside it (WAL allows that)."""
    return Outbox(workdir / "gateway-state" / f"{SITE}.sqlite")


def _outbox_size(workdir: Path) -> int:
    outbox = _outbox(workdir)
    try:
        return outbox.size()
    finally:
        outbox.close()


def test_pipeline_gateway_parks_what_the_upstream_broker_refuses(
    tmp_path: Path, mosquitto: Mosquitto, influx_store: InfluxStore
) -> None:
    """An upstream ACL that forbids the gateway's batches: MQTT 5 answers each with a
    failing PUBACK; the gateway keeps the batch's rows aside instead of deleting them or
    sending them forever, and goes on with the rest of its outbox.

    One reading at a time: mosquitto 2.0 also closes the connection after a refusal, and
    with more publishes in flight behind the refused one that close becomes a TCP reset
    that can swallow the refusing PUBACK (see the gateway README)."""
    acl = "topic read softplace/#\n"
    upstream = Mosquitto(tmp_path / "upstream", acl=acl)
    upstream.start()
    registry = tmp_path / "registry.yaml"
    (device,) = write_registry(registry, SITE, rooms=1)
    stack = Stack(tmp_path, SITE, registry, mosquitto.settings, influx_store,
                  upstream=upstream.settings)
    sensor = Fleet([device], mosquitto.settings)

    def parked() -> list[tuple[str, str]]:
        outbox = _outbox(tmp_path)
        try:
            return outbox.parked()
        finally:
            outbox.close()

    def state() -> str:
        return (f"parked {parked()}, outbox {_outbox_size(tmp_path)}, gateway log: "
                f"{stack.log('gateway')[-4000:]}")

    def rooms_parked(refused: int) -> bool:
        return sum("/room/" in topic for topic, _ in parked()) >= refused

    try:
        sensor.connect()
        stack.start("gateway", "gateway", ready="connected upstream")
        for refused in range(1, 5):
            sensor.play(1)  # one room reading, and sensor health when it changes
            wait_for(functools.partial(rooms_parked, refused), 60,
                     "refused messages were not parked", describe=state)
        wait_for(lambda: _outbox_size(tmp_path) == 0, 60, "the outbox kept rows", describe=state)
        rows = parked()
        # (dead letters too: other tests' sensors left retained statuses on this broker)
        assert sum("/room/" in topic for topic, _ in rows) == 4, state()
        assert all("authori" in reason.lower() for _, reason in rows)
    finally:
        sensor.close()
        stack.stop_all()
        upstream.stop()
