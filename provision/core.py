"""Provisioning decisions without I/O: password-file lines, ACL entries, device config,
the registry edit, and the esptool/mpremote command lines of an install.

Everything here takes and returns plain values (text, dicts, lists of arguments); the
shell (``provision.shell``) reads and writes the files and runs the commands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml
from softplace_fw import config as fw_config
from softplace_fw import topics as fw_topics

from softplace.errors import SoftPlaceError
from softplace.registry import parse_registry

# mosquitto_passwd's own format: user:$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>
PASSWORD_VERSION = "7"
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12  # as mosquitto_passwd
HASH = "sha512"
SERVICE_PREFIX = "softplace-"  # reserved for the service accounts (deploy/mosquitto/acl)
DEVICE_LEAVES = ("reading", "status")  # what a device may publish
DEVICE_READS = ("config", "ack")  # what it may subscribe to

# what the installer copies, relative to the firmware folder; compiled to .mpy when asked
FIRMWARE_ENTRY = ("boot.py", "main.py")
FIRMWARE_PACKAGE = "softplace_fw"
MQTT_AS_DIR = "lib/mqtt_as"  # vendored, pinned (firmware/lib/mqtt_as/VERSION)
HOST_CACHES = ("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules")
DEVICE_LIB = ":/lib"
CONFIG_FILE = "config.json"
SECRETS_FILE = "config.local.json"
CA_FILE = "ca.der"
FLASH_OFFSET = "0x1000"  # ESP32 (not S2/S3/C3) bootloader offset for MicroPython images
FLASH_BAUD = "460800"


class ProvisionError(SoftPlaceError):
    """A device cannot be added or installed as asked (the message says why)."""


def password_line(username: str, password: str, salt: bytes,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    """One mosquitto password-file line, as ``mosquitto_passwd -b`` writes it."""
    digest = hashlib.pbkdf2_hmac(HASH, password.encode(), salt, iterations)
    salt_text = base64.b64encode(salt).decode()
    digest_text = base64.b64encode(digest).decode()
    return f"{username}:${PASSWORD_VERSION}${iterations}${salt_text}${digest_text}"


def check_password_line(line: str, password: str) -> bool:
    """True when ``line`` (a $7$ password-file line) accepts ``password``."""
    try:
        _user, rest = line.strip().split(":", 1)
        _empty, version, iterations, salt, digest = rest.split("$")
        if version != PASSWORD_VERSION:
            return False
        computed = hashlib.pbkdf2_hmac(HASH, password.encode(), base64.b64decode(salt),
                                       int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(base64.b64encode(computed).decode(), digest)


def check_device_id(device: str) -> str:
    fw_topics.check_segment(device, "device")
    if device.startswith(SERVICE_PREFIX):
        raise ProvisionError(f"device id {device!r}: names starting with {SERVICE_PREFIX!r} "
                             "are reserved for the service accounts")
    return device


def acl_entries(site: str, device: str) -> str:
    """The device's own ACL block: its site and id only, no wildcard."""
    lines = [f"user {device}"]
    lines += [f"topic write {topic}" for topic in
              (fw_topics.reading(site, device), fw_topics.status(site, device))]
    lines += [f"topic read {topic}" for topic in
              (fw_topics.config(site, device), fw_topics.ack(site, device))]
    return "\n".join(lines) + "\n"


def accounts_in(passwd_text: str) -> dict[str, int]:
    """Username -> line number (1-based) of a password file."""
    return {line.split(":", 1)[0]: n for n, line in enumerate(passwd_text.splitlines(), 1)
            if ":" in line and not line.startswith("#")}


def acl_users_in(acl_text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for n, line in enumerate(acl_text.splitlines(), 1):
        parts = line.split()
        if len(parts) == 2 and parts[0] == "user":
            found.setdefault(parts[1], n)
    return found


def device_configs(site: str, device: str, *, sensor: str, mqtt_host: str, mqtt_port: int,
                   mqtt_password: str, wifi_ssid: str, wifi_password: str,
                   tls: bool = True) -> tuple[dict[str, object], dict[str, object]]:
    """(config.json, config.local.json) for the device, validated by the firmware's schema."""
    public: dict[str, object] = {"site": site, "device": device, "sensor": sensor,
                                 "mqtt_host": mqtt_host, "mqtt_port": mqtt_port,
                                 "mqtt_tls": tls}
    secrets: dict[str, object] = {"wifi_ssid": wifi_ssid, "wifi_password": wifi_password,
                                  "mqtt_user": device, "mqtt_password": mqtt_password}
    _cfg, errors = fw_config.validate({**public, **secrets}, dict(fw_config.DEFAULTS))
    if errors:
        raise ProvisionError("device config refused: " + fw_config.summarise(errors))
    return public, secrets


# --- the registry edit ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Node:
    """A mapping value in the registry YAML and where it is."""

    node: yaml.Node
    key_line: int  # 0-based line of its key


def _get(mapping: yaml.Node, key: str) -> _Node | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return _Node(v, k.start_mark.line)
    return None


def _items(node: _Node | None) -> list[yaml.Node]:
    return list(node.node.value) if node is not None and isinstance(
        node.node, yaml.SequenceNode) else []


def _device_lines(root: yaml.Node) -> dict[str, int]:
    """Every device id in the registry and its line (1-based)."""
    found: dict[str, int] = {}
    for site in _items(_get(root, "sites")):
        for building in _items(_get(site, "buildings")):
            for floor in _items(_get(building, "floors")):
                for room in _items(_get(floor, "rooms")):
                    for dev in _items(_get(room, "devices")):
                        if isinstance(dev, yaml.ScalarNode):
                            found.setdefault(dev.value, dev.start_mark.line + 1)
    return found


def _find_room(root: yaml.Node, site_id: str, room_id: str) -> yaml.MappingNode:
    for site in _items(_get(root, "sites")):
        sid = _get(site, "id")
        if sid is None or getattr(sid.node, "value", None) != site_id:
            continue
        for building in _items(_get(site, "buildings")):
            for floor in _items(_get(building, "floors")):
                for room in _items(_get(floor, "rooms")):
                    rid = _get(room, "id")
                    if rid is not None and getattr(rid.node, "value", None) == room_id and (
                            isinstance(room, yaml.MappingNode)):
                        return room
        raise ProvisionError(f"site {site_id!r} has no room {room_id!r}")
    raise ProvisionError(f"the registry has no site {site_id!r}")


def add_to_registry(text: str, site: str, room: str, device: str,
                    source: str = "registry.yaml") -> str:
    """The registry text with ``device`` added to ``room`` of ``site``; comments kept.

    Refuses a device id the registry already has, naming its line; the result is
    validated like any registry file.
    """
    root = yaml.compose(text)
    if root is None:
        raise ProvisionError(f"{source} is empty")
    existing = _device_lines(root)
    if device in existing:
        raise ProvisionError(f"{source}:{existing[device]}: device {device!r} is already "
                             "in the registry")
    room_node = _find_room(root, site, room)
    lines = text.splitlines(keepends=True)
    devices = _get(room_node, "devices")
    if devices is not None and isinstance(devices.node, yaml.SequenceNode) and (
            devices.node.flow_style):
        end = devices.node.end_mark  # just past "]"
        line = lines[end.line]
        close = end.column - 1
        inner = line[:close].rstrip()
        sep = "" if inner.endswith("[") else ", "
        lines[end.line] = inner + sep + device + line[close:]
    elif devices is not None and isinstance(devices.node, yaml.SequenceNode) and (
            devices.node.value):
        last = devices.node.value[-1]
        indent = " " * (last.start_mark.column - 2)
        lines.insert(last.end_mark.line + 1, f"{indent}- {device}\n")
    else:
        id_node = _get(room_node, "id")
        assert id_node is not None  # _find_room matched on it
        indent = " " * room_node.value[0][0].start_mark.column
        if devices is not None:  # "devices:" with nothing (null) or "[]"
            lines[devices.key_line] = f"{indent}devices: [{device}]\n"
        else:
            lines.insert(id_node.key_line + 1, f"{indent}devices: [{device}]\n")
    result = "".join(lines)
    try:
        parse_registry(result, source)
    except ValueError as err:
        raise ProvisionError(f"{source}: the registry would not validate: {err}") from err
    return result


# --- the install plan -------------------------------------------------------------------


def _is_cache(part: str) -> bool:
    return part in HOST_CACHES or part.startswith(".")


def firmware_files(relative_paths: Iterable[str]) -> list[str]:
    """The firmware files to copy (POSIX paths relative to the firmware folder), sorted."""
    keep = []
    for rel in relative_paths:
        path = PurePosixPath(rel)
        if any(_is_cache(part) for part in path.parts):
            continue
        top = path.parts[0]
        code = path.suffix in {".py", ".mpy"}
        if rel in FIRMWARE_ENTRY or (code and (top == FIRMWARE_PACKAGE
                                               or rel.startswith(MQTT_AS_DIR + "/"))):
            keep.append(rel)
    return sorted(keep)


def device_path(rel: str) -> str:
    """Where a firmware file goes on the device: entry scripts at /, libraries under /lib."""
    if rel in FIRMWARE_ENTRY:
        return ":/" + rel
    if rel.startswith("lib/"):
        return ":/" + rel
    return DEVICE_LIB + "/" + rel


def esptool_commands(python: str, port: str, image: str) -> list[list[str]]:
    """Erase and write MicroPython (``--flash``), as the MicroPython download page says."""
    base = [python, "-m", "esptool", "--chip", "esp32", "--port", port]
    return [[*base, "erase-flash"],
            [*base, "--baud", FLASH_BAUD, "write-flash", "-z", FLASH_OFFSET, image]]


def mpremote_commands(mpremote: str, port: str, files: list[tuple[str, str]],
                      config_files: list[tuple[str, str]]) -> list[list[str]]:
    """One mpremote session: make the folders, copy every file, reset.

    ``files``/``config_files``: (local path, device path) pairs.
    """
    folders: list[str] = []
    for _local, remote in files:
        parent = str(PurePosixPath(remote[1:]).parent)
        parts = PurePosixPath(parent).parts
        for i in range(1, len(parts) + 1):
            folder = ":" + str(PurePosixPath(*parts[:i]))
            if folder not in (":/",) and folder not in folders:
                folders.append(folder)
    chain: list[str] = [mpremote, "connect", port]
    for folder in folders:
        chain += ["+", "exec", f"import os\ntry:\n os.mkdir({folder[1:]!r})\nexcept OSError:\n"
                  " pass"]
    for local, remote in [*files, *config_files]:
        chain += ["+", "cp", local, remote]
    chain += ["+", "reset"]
    return [chain]


def live_topics(site: str, device: str) -> list[str]:
    """What the installer watches to call a sensor live: its status and its readings."""
    return [fw_topics.status(site, device), fw_topics.reading(site, device)]


def is_live_message(topic: str, payload: bytes | bytearray, retained: bool, site: str,
                    device: str) -> bool:
    """A reading of this device, or an ``online`` status it just sent (not a retained one
    left from an earlier boot)."""
    if topic == fw_topics.reading(site, device):
        return True
    if topic == fw_topics.status(site, device) and not retained:
        return re.search(rb'"state":\s*"online"', payload) is not None
    return False
