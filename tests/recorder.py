"""A paho client subscribed to one topic that keeps each message, parsed as a contract
model: one side of the gateway -> ingest hop played by hand in a test."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

import paho.mqtt.client as paho
from pydantic import BaseModel

from softplace.mqtt import QOS_AT_LEAST_ONCE, make_client
from softplace.settings import MqttSettings

M = TypeVar("M", bound=BaseModel)
TIMEOUT_S = 10.0


class TopicRecorder(Generic[M]):
    """Subscribed (SUBACK seen) when built; ``messages`` in arrival order, re-sends included."""

    def __init__(self, broker: MqttSettings, client_id: str, topic: str,
                 model: type[M]) -> None:
        self.model = model
        self._received: list[bytes] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = make_client(broker, client_id)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, QOS_AT_LEAST_ONCE)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT_S), f"never subscribed to {topic}"

    def _on_message(self, client: paho.Client, userdata: object,
                    message: paho.MQTTMessage) -> None:
        with self._lock:
            self._received.append(bytes(message.payload))

    def payloads(self) -> list[bytes]:
        """As they came, unparsed."""
        with self._lock:
            return list(self._received)

    def messages(self) -> list[M]:
        return [self.model.model_validate_json(p) for p in self.payloads()]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
