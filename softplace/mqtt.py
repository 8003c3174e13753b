"""Connection behaviour in one place: paho client set-up, persistent sessions, TLS,
last will, manual acknowledgement and reconnect backoff."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from softplace.settings import MqttSettings

log = logging.getLogger(__name__)
QOS_AT_LEAST_ONCE = 1
# unacknowledged QoS 1 messages the broker may have in flight to one of our clients (MQTT 5)
RECEIVE_MAXIMUM = 1000
# QoS 1 messages paho keeps in flight on one of our connections; more wait in its queue
MAX_INFLIGHT = 100
# paho waits RECONNECT_MIN_S after a lost or failed connection, doubling up to RECONNECT_MAX_S
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    will: Will | None = None,
    persistent: bool = True,
) -> paho.Client:
    """A paho client with a persistent session (unless told otherwise) and our settings.

    With ``manual_ack`` the caller acknowledges each QoS 1 message itself (``client.ack``)
    once it is durably stored, so a crash before that makes the broker redeliver it.
    """
    v5 = settings.protocol == "5"
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
        )
        client.tls_set_context(context)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=QOS_AT_LEAST_ONCE, retain=will.retain)
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.max_queued_messages_set(0)
    return client


class Acknowledger:
    """Acknowledges QoS 1 messages (manual ack) once the caller has kept them, and only on
    the connection they came on: after a reconnect the broker redelivers whatever was not
    acknowledged, so an ack from the old connection must not go out on the new one.

    ``connection`` is an epoch that moves on at every connect and every disconnect: an ack
    asked for between a disconnect and the next CONNACK is dropped too."""

    def __init__(self, client: paho.Client) -> None:
        self._client = client
        self.connection = 0

    def reconnected(self) -> None:
        """Call from on_connect."""
        self.connection += 1

    def lost(self) -> None:
        """Call from on_disconnect."""
        self.connection += 1

    def ack(self, mid: int, qos: int, connection: int) -> bool:
        """Acknowledge if it is still the message's connection; True when an ack went out."""
        if qos > 0 and connection == self.connection:
            self._client.ack(mid, qos)
            return True
        return False


def connect_async(client: paho.Client, settings: MqttSettings, *, persistent: bool = True) -> None:
    """Start connecting in paho's background thread; paho reconnects with backoff."""
    properties = None
    clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
    if settings.protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = settings.session_expiry_s if persistent else 0
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        clean_start = not persistent
    client.connect_async(
        settings.host, settings.port, keepalive=settings.keepalive_s,
        clean_start=clean_start, properties=properties,
    )
    client.loop_start()


def address(settings: MqttSettings) -> str:
    return f"{settings.host}:{settings.port}"


class ConnectionLog:
    """Says at WARNING, with the broker's address and paho's retry schedule, when a connect
    attempt fails or a connection is lost; paho itself keeps quiet and keeps retrying.

    ``connect_failed`` is an ``on_connect_fail`` callback; call ``disconnected`` from
    ``on_disconnect``."""

    def __init__(self, settings: MqttSettings, what: str) -> None:
        self.address = address(settings)
        self.what = what
        self.schedule = (f"paho retries after {RECONNECT_MIN_S} s, doubling up to "
                         f"{RECONNECT_MAX_S} s")

    def connect_failed(self, client: paho.Client, userdata: Any) -> None:
        log.warning("%s: cannot connect to the broker at %s; %s", self.what, self.address,
                    self.schedule)

    def refused(self, reason_code: object) -> None:
        log.warning("%s: the broker at %s refused the connection (%s); %s", self.what,
                    self.address, reason_code, self.schedule)

    def disconnected(self, reason_code: object) -> None:
        if reason_failed(reason_code):
            log.warning("%s: lost the connection to the broker at %s (%s); %s", self.what,
                        self.address, reason_code, self.schedule)
        else:
            log.info("%s: disconnected from the broker at %s", self.what, self.address)


def reason_failed(reason_code: object) -> bool:
    """paho v2 gives ReasonCode objects (v5) or ints; both know whether they failed."""
    is_failure = getattr(reason_code, "is_failure", None)
    if isinstance(is_failure, bool):
        return is_failure
    return bool(reason_code)
