"""A virtual sensor: on the wire it is a deployed ESP32 (same topics, payloads, retained
status, last will, reconnect), and it counts with the firmware's own core
(``softplace_fw.core.SensorCore``), fed by a simulated room instead of a radar.

It follows the device acknowledgement protocol (``softplace.messages.DeviceAck``): each
reading is kept until an ack on ``.../dev/<device>/ack`` covers its ``(boot, seq)``, and the
unacknowledged tail is re-sent in order after every reconnect and whenever no ack covered
the oldest one for ``ACK_RESEND_S`` (checked by ``poll``, on the injected clock). With
``follows_acks=False`` it behaves like firmware that predates acks: it forgets a reading
once the broker has it (PUBACK)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from softplace_fw import config as fw_config
from softplace_fw import payload as fw_payload
from softplace_fw.core import SensorCore

from softplace import topics
from softplace.errors import MessageError
from softplace.messages import ACK_RESEND_S, DeviceAck, parse_message
from softplace.mqtt import QOS_AT_LEAST_ONCE, Will, connect_async, make_client, reason_failed
from softplace.settings import MqttSettings

log = logging.getLogger(__name__)


def firmware_config(**overrides: Any) -> dict[str, Any]:
    """The firmware's defaults with overrides, validated by the firmware's own rules."""
    defaults = {name: spec[4] for name, spec in fw_config.SCHEMA.items()}
    result, errors = fw_config.validate(overrides, defaults)
    if errors:
        raise ValueError(f"invalid virtual sensor config: {errors}")
    return dict(result)


class VirtualSensor:
    def __init__(
        self,
        site: str,
        device: str,
        broker: MqttSettings,
        *,
        boot: int = 1,
        config: dict[str, Any] | None = None,
        battery_pct: float | None = None,
        rssi_dbm: int | None = -60,
        clock: Callable[[], float] = time.monotonic,
        resend_after_s: float = ACK_RESEND_S,
        follows_acks: bool = True,
    ) -> None:
        self.site = site
        self.device = device
        self.core = SensorCore(device, boot, config or firmware_config(site=site), "virtual")
        self.battery_pct = battery_pct
        self.rssi_dbm = rssi_dbm
        self.published = 0
        self.resent = 0  # readings sent again because no ack covered them
        self.acks = 0  # DeviceAck messages received
        self.last_count = 0
        self.clock = clock
        self.resend_after_s = resend_after_s
        self.follows_acks = follows_acks
        # (boot, seq) -> (payload, when last sent), oldest first, until an ack covers it
        self._unacked: OrderedDict[tuple[int, int], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._connects = 0
        self._connected = threading.Event()
        will = Will(topics.device_status(site, device), fw_payload.encode(self.core.will()))
        self.client = make_client(broker, f"softplace-dev-{site}-{device}", will=will,
                                  persistent=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self._connected.clear()
        self.client.on_message = self._on_ack
        self._ack_topic = topics.device_ack(site, device)
        self._reading_topic = topics.device_reading(site, device)
        self._broker = broker

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            log.warning("%s: broker refused the connection: %s", self.device, reason_code)
            return
        if self.follows_acks:
            client.subscribe(self._ack_topic, QOS_AT_LEAST_ONCE)
        self._connects += 1
        self._connected.set()
        if self._connects > 1:
            self._resend()  # acks sent while we were away are lost with the session

    def _on_ack(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.topic != self._ack_topic:  # amqtt (the demo's broker) also hands a
            return  # subscriber other devices' retained statuses; a real broker never does
        try:
            ack = parse_message(DeviceAck, bytes(message.payload))
        except MessageError as err:
            log.warning("%s: ignored a bad ack: %s", self.device, err)
            return
        with self._lock:
            self.acks += 1
            while self._unacked and next(iter(self._unacked)) <= ack.key:
                self._unacked.popitem(last=False)

    def unacked(self) -> int:
        """Readings no ack has covered yet (kept, and re-sent)."""
        with self._lock:
            return len(self._unacked)

    def poll(self) -> int:
        """Re-send the unacknowledged tail if no ack covered its oldest reading for
        ``resend_after_s``; how many readings were re-sent."""
        with self._lock:
            if not self._unacked:
                return 0
            _, sent_at = next(iter(self._unacked.values()))
            if self.clock() - sent_at < self.resend_after_s:
                return 0
        return self._resend()

    def _resend(self) -> int:
        now = self.clock()
        with self._lock:
            tail = list(self._unacked.items())
            for key, (payload, _) in tail:
                self._unacked[key] = (payload, now)
        for _, (payload, _) in tail:
            self.client.publish(self._reading_topic, payload, qos=QOS_AT_LEAST_ONCE)
        self.resent += len(tail)
        return len(tail)

    def connect(self, timeout: float = 10, now_ts: float | None = None) -> None:
        connect_async(self.client, self._broker, persistent=False)
        if not self._connected.wait(timeout):
            raise TimeoutError(f"{self.device}: no connection to {self._broker.url}")
        status = self.core.status("online", unix_ts=int(now_ts) if now_ts else None,
                                  reset_cause="power_on")
        self.client.publish(topics.device_status(self.site, self.device),
                            fw_payload.encode(status), qos=QOS_AT_LEAST_ONCE, retain=True)

    def observe(self, sim_ms: int, unix_ts: float, count: int) -> list[dict[str, Any]]:
        """Feed the firmware core what a doorway counter + radar would see; publish."""
        entered = max(count - self.last_count, 0)
        left = max(self.last_count - count, 0)
        self.last_count = count
        readings = self.core.observe(
            sim_ms, int(unix_ts), True, count > 0, entered, left,
            rssi_dbm=self.rssi_dbm, battery_pct=self.battery_pct,
        )
        now = self.clock()
        for reading in readings:
            payload = fw_payload.encode(reading)
            if self.follows_acks:
                with self._lock:
                    key = (int(reading["boot"]), int(reading["seq"]))
                    self._unacked[key] = (payload, now)
            self.client.publish(self._reading_topic, payload, qos=QOS_AT_LEAST_ONCE)
        self.published += len(readings)
        self.poll()
        return list(readings)

    def publish_raw(self, payload: bytes) -> None:
        """Send arbitrary bytes on this sensor's reading topic (tests of bad input)."""
        self.client.publish(topics.device_reading(self.site, self.device), payload,
                            qos=QOS_AT_LEAST_ONCE)

    def pending(self) -> int:
        """QoS 1 messages the broker has not acknowledged yet."""
        return len(getattr(self.client, "_out_messages", {}))

    def close(self, *, clean: bool = True) -> None:
        """``clean``: say offline and disconnect; otherwise vanish so the last will fires."""
        if clean:
            info = self.client.publish(
                topics.device_status(self.site, self.device),
                fw_payload.encode(self.core.status("offline")), qos=QOS_AT_LEAST_ONCE,
                retain=True,
            )
            if info.rc == paho.MQTT_ERR_SUCCESS:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(5)
            self.client.disconnect()
        else:
            sock = self.client.socket()
            if sock is not None:
                sock.close()
        self.client.loop_stop()
