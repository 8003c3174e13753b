"""An embedded MQTT 3.1.1 broker (amqtt) for the demo: no service to install.

amqtt speaks MQTT 3.1.1 only, so with it ingest uses a plain subscription instead of an
MQTT 5 shared one; everything else (QoS 1, persistent sessions, retained status, last
will) behaves as with mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType

from amqtt.broker import Broker

from softplace.settings import MqttSettings

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._broker: Broker | None = None
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)

    @property
    def settings(self) -> MqttSettings:
        return MqttSettings(url=f"mqtt://127.0.0.1:{self.port}", protocol="3.1.1")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as err:  # reported to the starting thread
            self._error = err
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def start(self) -> EmbeddedBroker:
        # amqtt logs every connection at INFO; keep the demo's screen for the demo
        logging.getLogger("amqtt").setLevel(logging.ERROR)
        self._thread.start()
        if not self._started.wait(15) or self._error is not None:
            raise RuntimeError(f"embedded broker did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(10)
            except Exception:  # shutting down anyway
                log.debug("amqtt shutdown raised", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
