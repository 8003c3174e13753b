"""Host stand-in for ``ntptime``: the host clock is already right."""

host = "pool.ntp.org"


def settime():
    pass
