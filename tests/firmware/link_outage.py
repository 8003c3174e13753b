"""Broker outages against the real firmware: main.py and the vendored mqtt_as under the
WebAssembly MicroPython (firmware/tests/run_link.mjs) publishing to the real mosquitto
with the deploy configuration, while a stand-in gateway acknowledges what it receives.

Used by tests/firmware/test_fw_link.py (bounded outages) and bench/fw_link_outages.py
(10 minutes each)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.deployed_broker import SERVICE_PASSWORD, DeployedBroker
from tests.firmware.paths import FW_TESTS

SITE = "s"
DEVICE = "dev-link"
PASSWORD = "link-pw"
GATEWAY = f"softplace-gateway-{SITE}"
READING = f"softplace/v1/{SITE}/dev/{DEVICE}/reading"
ACK = f"softplace/v1/{SITE}/dev/{DEVICE}/ack"
WDT_MS = 30_000  # the firmware's default wdt_s
SCENARIOS = ("stopped", "frozen", "refusing")
# "stopped" is `docker compose stop`: SIGTERM, so mosquitto saves its sessions. A kill -9
# before its autosave loses what it had queued, and a later ack then covers readings the
# gateway never saw: see the report on the acknowledgement protocol.


def device_config(port: int) -> dict[str, Any]:
    # a small spool so an outage of a minute already drops (and counts) readings
    return {"site": SITE, "device": DEVICE, "mqtt_host": "127.0.0.1", "mqtt_port": port,
            "mqtt_tls": False, "mqtt_user": DEVICE, "mqtt_password": PASSWORD,
            "wifi_ssid": "lab", "wifi_password": "lab", "sensor": "pir", "hold_s": 10,
            "debounce_ms": 0, "heartbeat_s": 10, "sample_ms": 200,
            "buffer_rtc_bytes": 256, "buffer_flash_bytes": 400}


class Gateway:
    """Receives the device's readings (as the site's gateway account, in a persistent
    session like the real gateway's) and acks each one."""

    def __init__(self, port: int) -> None:
        self.readings: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=GATEWAY, protocol=paho.MQTTv5)
        self.client.username_pw_set(GATEWAY, SERVICE_PASSWORD)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(READING, qos=1)
        self.client.on_message = self._on_message
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, clean_start=False, properties=session)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        reading = json.loads(msg.payload)
        with self._lock:
            self.readings.append((time.time(), reading))
        ack = {"v": 1, "boot": reading["boot"], "seq": reading["seq"]}
        client.publish(ACK, json.dumps(ack), qos=1)

    def snapshot(self) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return list(self.readings)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Device:
    """run_link.mjs as a process; its LINK lines with the host time they arrived."""

    port: int
    seconds: int
    lines: queue.Queue[tuple[float, dict[str, Any]]] = field(default_factory=queue.Queue)
    states: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        node = shutil.which("node")
        assert node, "node is required"
        self.process = subprocess.Popen(
            [node, "run_link.mjs", json.dumps(device_config(self.port)), str(self.seconds)],
            cwd=FW_TESTS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip())
            if line.startswith(("LINK ", "LINK_END ")):
                self.lines.put((time.time(), json.loads(line.split(" ", 1)[1])))

    def poll(self) -> dict[str, Any] | None:
        while True:
            try:
                self.states.append(self.lines.get_nowait())
            except queue.Empty:
                break
        return self.states[-1][1] if self.states else None

    def wait_for(self, what: str, check: Any, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.poll()
            if state is not None and check(state):
                return state
            assert self.process.poll() is None, "\n".join(self.output[-40:])
            time.sleep(0.2)
        raise AssertionError(f"device: {what} not within {timeout_s} s:\n"
                             + "\n".join(self.output[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _device_account(broker: DeployedBroker, present: bool) -> None:
    from provision import core

    passwd = broker.workdir / "devices" / "passwd"
    line = core.password_line(DEVICE, PASSWORD, os.urandom(core.SALT_BYTES)) + "\n"
    passwd.write_text(line if present else "")


def outage(broker: DeployedBroker, scenario: str, seconds: float) -> None:
    """The broker stopped (SIGTERM), frozen (SIGSTOP) or refusing the device (no account)
    for ``seconds``, then back."""
    assert broker.process is not None
    if scenario == "stopped":
        broker.stop()
        time.sleep(seconds)
        broker.start()
    elif scenario == "frozen":
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
    elif scenario == "refusing":
        broker.stop()
        _device_account(broker, present=False)
        broker.start()
        time.sleep(seconds)
        broker.stop()
        _device_account(broker, present=True)
        broker.start()
    else:
        raise ValueError(scenario)


@dataclass(frozen=True)
class Result:
    sent: int  # readings the device made (its seq)
    landed: set[int]
    dropped: int
    doubled: int
    max_feed_gap_ms: int
    sensed_during: int
    replayed_old_ts: int  # readings made during the outage that arrived after it
    outage_s: float
    pending_at_end: bool
    health_reasons: set[str]
    output: list[str]


def run(broker: DeployedBroker, scenario: str, outage_s: float, settle_s: float = 60) -> Result:
    _device_account(broker, present=True)
    broker.stop()
    broker.start()
    gateway = Gateway(broker.port)
    device = Device(broker.port, int(outage_s + settle_s + 120))
    try:
        device.wait_for("first reading acked", lambda s: s["acked"] is not None, 60)
        before = device.poll()
        assert before is not None
        t_start = time.time()
        outage(broker, scenario, outage_s)
        t_end = time.time()
        during = device.poll()
        assert during is not None
        seq_at_end = during["seq"]
        device.wait_for("spool drained and acked",
                        lambda s: s["connected"] and not s["pending"] and s["seq"] > seq_at_end,
                        settle_s)
        final = device.poll()
        assert final is not None
    finally:
        device.stop()
        gateway.close()
    received = gateway.snapshot()
    seqs = [r["seq"] for _t, r in received if r["boot"] == final["boot"]]
    replayed = sum(1 for arrived, r in received
                   if arrived > t_end and t_start + 1 < r["ts"] < t_end)
    return Result(
        sent=final["seq"], landed=set(seqs), dropped=final["dropped"],
        doubled=len(seqs) - len(set(seqs)), max_feed_gap_ms=max(
            s["max_feed_gap_ms"] for _t, s in device.states),
        sensed_during=during["sensed"] - before["sensed"], replayed_old_ts=replayed,
        outage_s=t_end - t_start, pending_at_end=final["pending"],
        health_reasons={s["health"] for _t, s in device.states}, output=device.output)
