"""Connection behaviour in one place: paho client set-up, persistent sessions, TLS,
last will, manual acknowledgement and reconnect backoff."""

from __future__ import annotations

import logging
import ssl
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
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
# what one recv() on the socket asks for (paho itself reads a packet in three recv calls)
RECV_BYTES = 65536
_PUBACK = struct.Struct("!BBH")  # fixed header (PUBACK, remaining length 2) and the mid
_U16 = struct.Struct("!H")
_NO_INFO = paho.MQTTMessageInfo(0)  # a received message has no publish to track
# a PUBLISH cut out of a read for ``Client.on_publishes``: (topic, payload, mid, the fixed
# header byte: its DUP flag 0x08, QoS bits 0x06 and RETAIN flag 0x01)
Publish = tuple[str, bytes, int, int]
_PUBLISH = 0x30
_QOS_BITS = 0x06
_QOS1_BITS = 0x02


class _Incoming(paho.MQTTMessage):
    """A received PUBLISH, without what paho builds for each and nobody here reads: the
    publish tracker (a ``threading.Condition``) and the parsed MQTT 5 ``Properties``."""

    def __init__(self, mid: int, topic: bytes, header: int, payload: bytes) -> None:
        self.timestamp = time.monotonic()
        self.state = paho.mqtt_ms_invalid
        self.mid = mid
        self._topic = topic
        self.payload = payload
        self.dup = bool(header & 0x08)
        self.qos = (header & 0x06) >> 1
        self.retain = bool(header & 0x01)
        self.info = _NO_INFO
        self.properties = None


def _skip_properties(packet: bytes | bytearray, pos: int) -> int:
    """Where the payload starts: after the MQTT 5 property block at ``pos`` (a variable
    byte integer length, then that many bytes)."""
    length = shift = 0
    for _ in range(4):
        byte = packet[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return pos + length
        shift += 7
    raise ValueError("malformed property length")


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True



def _remaining_length(buf: bytes, header: int) -> tuple[int, int] | None:
    """The Remaining Length after the fixed header byte at ``header`` (MQTT's variable
    byte integer): (length, where the body starts), or None when ``buf`` ends inside it
    or it runs over 4 bytes (left for paho's reader)."""
    pos, length, shift = header + 1, 0, 0
    while pos < len(buf) and pos - header <= 4:
        byte = buf[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, pos
        shift += 7
    return None

class Client(paho.Client):
    """paho's client with cheaper I/O per message, same protocol and callbacks.

    * Reads the socket in chunks of ``RECV_BYTES`` and serves paho's small reads (a
      packet's first byte, its length bytes, its body) from that buffer: one recv()
      system call, and one GIL release, per chunk instead of three per packet.
      ``loop_read`` goes on while the buffer holds data, since select() cannot see it.
    * Decodes a QoS 0/1 PUBLISH itself (``_handle_publish``), skipping its MQTT 5
      properties unparsed (no topic alias, no user property is asked for or read here);
      anything unusual goes to paho's own decoder, which refuses it as paho does.
    * With ``on_publishes`` set (manual acks, no ``message_callback_add`` filter), every
      QoS 0/1 PUBLISH wholly in the buffer is cut out of it in one loop and handed over in
      one call: no packet dict, no ``MQTTMessage``, one callback per read instead of one
      per message. The first packet of another kind ends the run and goes the usual way
      after it, so packets are still handled in their order.
    * ``ack_many`` queues the PUBACKs of a whole batch as one write (one wake-up of the
      network thread, one send) instead of one each.
    """

    _rbuf: bytes = b""
    _rpos: int = 0
    _filtered = False  # whether message_callback_add was ever called
    # a consumer taking messages in batches: called (network thread, callback mutex held)
    # with the PUBLISHes of one read, instead of on_message once per message
    on_publishes: Callable[[list[Publish]], None] | None = None

    def _packet_read(self) -> MQTTErrorCode:
        """A packet wholly in the buffer is cut out of it here; anything else (an empty
        buffer, a packet split across reads) goes through paho's byte-by-byte reader."""
        buf, start = self._rbuf, self._rpos
        if self._in_packet["command"] != 0 or len(buf) - start < 2:
            return super()._packet_read()
        on_publishes = self.on_publishes
        if on_publishes is not None and self._manual_ack and not self._filtered:
            publishes = self._cut_publishes(buf, start)
            if publishes:
                with self._msgtime_mutex:
                    self._last_bytes_received = time.monotonic()
                with self._in_callback_mutex:
                    try:
                        on_publishes(publishes)
                    except Exception as err:
                        self._easy_log(paho.MQTT_LOG_ERR,
                                       "Caught exception in on_publishes: %s", err)
                        if not self.suppress_exceptions:
                            raise
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        found = _remaining_length(buf, start)
        if found is None:
            return super()._packet_read()
        length, pos = found
        end = pos + length
        if end > len(buf):
            return super()._packet_read()
        self._rpos = end
        self._in_packet = {"command": buf[start], "have_remaining": 1, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": length,
                           "packet": bytearray(memoryview(buf)[pos:end]), "to_process": 0,
                           "pos": 0}
        try:
            rc = self._packet_handle()
        except MalformedPacket as err:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", err)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": 0,
                           "packet": bytearray(), "to_process": 0, "pos": 0}
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        return rc

    def _cut_publishes(self, buf: bytes, start: int) -> list[Publish]:
        """The QoS 0/1 PUBLISH packets wholly in ``buf`` from ``start`` on, up to the first
        packet of another kind, one split across reads or anything unusual (left for
        paho's reader, which refuses it as paho does); moves the read position past them."""
        publishes: list[Publish] = []
        size = len(buf)
        v5 = self._protocol == paho.MQTTv5
        pos = start
        while pos + 1 < size:
            header = buf[pos]
            if (header & 0xF0) != _PUBLISH or (header & _QOS_BITS) > _QOS1_BITS:
                break
            found = _remaining_length(buf, pos)
            if found is None:
                break
            length, body = found
            end = body + length
            if end > size or length < 2:
                break
            topic_end = body + 2 + ((buf[body] << 8) | buf[body + 1])
            data = topic_end
            mid = 0
            try:
                if header & _QOS_BITS:
                    mid = (buf[data] << 8) | buf[data + 1]
                    data += 2
                if v5:
                    data = _skip_properties(buf, data)
                if topic_end == body + 2 or data > end:
                    break
                topic = buf[body + 2:topic_end].decode()
            except (IndexError, ValueError):  # UnicodeDecodeError is a ValueError
                break
            publishes.append((topic, buf[data:end], mid, header))
            pos = end
        self._rpos = pos
        return publishes

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        if self._filtered:  # paho matches every topic against the filters, in Python
            super()._handle_on_message(message)
            return
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(RECV_BYTES)  # BlockingIOError when nothing is there
            if not data:
                return data  # the connection is closed
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = min(start + bufsize, len(self._rbuf))
        return self._rbuf[start:self._rpos]

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        packet: bytes | bytearray = self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        try:
            (topic_length,) = _U16.unpack_from(packet, 0)
            pos = 2 + topic_length
            mid = 0
            if qos == QOS_AT_LEAST_ONCE:
                (mid,) = _U16.unpack_from(packet, pos)
                pos += 2
            if self._protocol == paho.MQTTv5:
                pos = _skip_properties(packet, pos)
            usual = qos <= QOS_AT_LEAST_ONCE and topic_length > 0 and pos <= len(packet)
        except (struct.error, IndexError, ValueError):
            usual = False
        if not usual:
            return super()._handle_publish()
        message = _Incoming(mid, bytes(packet[2:2 + topic_length]), header, bytes(packet[pos:]))
        self._handle_on_message(message)
        if qos == QOS_AT_LEAST_ONCE and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0  # never read a closed connection's bytes
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == paho.MQTT_ERR_SUCCESS and self._sock is not None \
                and self._rpos < len(self._rbuf):
            rc = super().loop_read(max_packets)
        return rc

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge these QoS 1 messages (manual ack) with one queued write."""
        packet = b"".join(_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(paho.PUBACK, packet, 0, QOS_AT_LEAST_ONCE)


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    will: Will | None = None,
    persistent: bool = True,
) -> Client:
    """A paho client with a persistent session (unless told otherwise) and our settings.

    With ``manual_ack`` the caller acknowledges each QoS 1 message itself (``client.ack``)
    once it is durably stored, so a crash before that makes the broker redeliver it.
    """
    v5 = settings.protocol == "5"
    client = Client(
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

    def __init__(self, client: Client) -> None:
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

    def ack_all(self, messages: Sequence[tuple[int, int, int]]) -> int:
        """``ack`` each (mid, qos, connection), in order, the QoS 1 ones as one write; how
        many acks went out."""
        current = self.connection
        mids = [mid for mid, qos, connection in messages
                if qos == QOS_AT_LEAST_ONCE and connection == current]
        self._client.ack_many(mids)
        others = sum(self.ack(mid, qos, connection) for mid, qos, connection in messages
                     if qos > QOS_AT_LEAST_ONCE)
        return len(mids) + others


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
