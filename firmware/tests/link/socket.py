"""``socket`` for mqtt_as under the WebAssembly MicroPython: non-blocking TCP over Node's
``net`` (``globalThis.softplace_net``, defined by run_link.mjs). Bytes cross as hex."""

from binascii import hexlify, unhexlify
from errno import EINPROGRESS

import js

AF_INET = 2
SOCK_STREAM = 1
SOCK_DGRAM = 2
ECONNRESET = 104
ECONNREFUSED = 111


def getaddrinfo(host, port, *_args):
    return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]


class socket:
    def __init__(self, *_args):
        self._id = None

    def setblocking(self, _flag):
        pass

    def connect(self, addr):
        self._id = js.softplace_net.open(addr[0], addr[1])
        raise OSError(EINPROGRESS)

    def _state(self):
        return js.softplace_net.state(self._id) if self._id is not None else "closed"

    def write(self, data, length=None):
        state = self._state()
        if state == "connecting":
            return None
        if state != "open":
            raise OSError(ECONNREFUSED if state == "refused" else ECONNRESET)
        data = bytes(data) if length is None else bytes(data[:length])
        return js.softplace_net.write(self._id, hexlify(data).decode())

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        state = self._state()
        data = js.softplace_net.read(self._id, n) if self._id is not None else ""
        if data:
            chunk = unhexlify(data)
            buf[:len(chunk)] = chunk
            return len(chunk)
        if state in ("closed", "refused", "error"):
            return 0
        return None

    def read(self, n):
        buf = bytearray(n)
        got = self.readinto(buf, n)
        return None if got is None else bytes(buf[:got])

    def close(self):
        if self._id is not None:
            js.softplace_net.close(self._id)
            self._id = None
