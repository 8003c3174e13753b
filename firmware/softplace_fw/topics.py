"""Device-side topics; mirrors ``softplace.topics`` (checked by the CPython tests)."""

PREFIX = "softplace/v1"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_REST = _ALNUM + "_.-"


def check_segment(value: str, what: str) -> str:
    """Same rule as the services: ``^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$``."""
    ok = 0 < len(value) <= 64 and value[0] in _ALNUM
    if ok:
        for ch in value:
            if ch not in _REST:
                ok = False
                break
    if not ok:
        raise ValueError("{} {!r} is not a valid topic segment".format(what, value))
    return value


def _dev(site: str, device: str, leaf: str) -> str:
    return "{}/{}/dev/{}/{}".format(PREFIX, check_segment(site, "site"),
                                   check_segment(device, "device"), leaf)


def reading(site: str, device: str) -> str:
    return _dev(site, device, "reading")


def status(site: str, device: str) -> str:
    return _dev(site, device, "status")


def config(site: str, device: str) -> str:
    return _dev(site, device, "config")


def ack(site: str, device: str) -> str:
    """Gateway -> device: ``{"v": 1, "boot": B, "seq": S}``, QoS 1, never retained."""
    return _dev(site, device, "ack")
