"""Host stand-in for ``network``: the Wi-Fi link is always up (the broker is what fails)."""

STA_IF = 0
STAT_IDLE = 1000
STAT_GOT_IP = 1010


class WLAN:
    def __init__(self, interface=STA_IF):
        pass

    def active(self, *_args):
        return True

    def connect(self, *_args):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return True

    def status(self, what=None):
        return -55 if what == "rssi" else STAT_GOT_IP

    def config(self, *_args, **_kwargs):
        pass
