"""provision.core: password lines, ACL blocks, configs, the registry edit, install plans."""

from __future__ import annotations

import base64

import pytest

from provision import core
from provision.core import ProvisionError
from softplace.registry import SAMPLE_REGISTRY, parse_registry

SAMPLE = SAMPLE_REGISTRY.read_text(encoding="utf-8")
SITE = "branch-lyon-part-dieu"


def test_core_password_line_has_mosquittos_format() -> None:
    line = core.password_line("dev-a", "secret", b"\x01" * core.SALT_BYTES)
    user, rest = line.split(":", 1)
    _empty, version, iterations, salt, digest = rest.split("$")
    assert (user, version, iterations) == ("dev-a", "7", "101")
    assert base64.b64decode(salt) == b"\x01" * 12
    assert len(base64.b64decode(digest)) == 64  # SHA-512
    assert core.check_password_line(line, "secret")
    assert not core.check_password_line(line, "Secret")
    assert not core.check_password_line("dev-a:$6$x$y", "secret")


def test_core_acl_block_binds_site_and_device_without_wildcards() -> None:
    block = core.acl_entries("s", "dev-a")
    assert block.splitlines() == [
        "user dev-a",
        "topic write softplace/v1/s/dev/dev-a/reading",
        "topic write softplace/v1/s/dev/dev-a/status",
        "topic read softplace/v1/s/dev/dev-a/config",
        "topic read softplace/v1/s/dev/dev-a/ack",
    ]
    assert "+" not in block and "#" not in block
    assert core.acl_users_in("# x\n" + block) == {"dev-a": 2}


@pytest.mark.parametrize("bad", ["softplace-ingest", "softplace-gateway-s", "a/b", "+", "#", ""])
def test_core_device_ids_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # ProvisionError or the topic rule's ValueError
        try:
            core.check_device_id(bad)
        except ProvisionError as err:
            raise ValueError(str(err)) from err


def test_core_device_configs_validated_by_the_firmware_schema() -> None:
    public, secrets = core.device_configs(
        "s", "dev-a", sensor="ld2410", mqtt_host="broker.example", mqtt_port=8883,
        mqtt_password="pw", wifi_ssid="net", wifi_password="wpw")
    assert public == {"site": "s", "device": "dev-a", "sensor": "ld2410",
                      "mqtt_host": "broker.example", "mqtt_port": 8883, "mqtt_tls": True}
    assert secrets["mqtt_user"] == "dev-a"
    with pytest.raises(ProvisionError, match="sensor"):
        core.device_configs("s", "dev-a", sensor="camera", mqtt_host="b", mqtt_port=8883,
                            mqtt_password="pw", wifi_ssid="n", wifi_password="w")


def _devices(text: str, room: str) -> list[str]:
    return list(parse_registry(text).site(SITE).room(room).room.devices)


def test_core_registry_flow_list_gets_the_device_and_keeps_comments() -> None:
    out = core.add_to_registry(SAMPLE, SITE, "hall", "lyon-hall-3")
    assert _devices(out, "hall") == ["lyon-hall-door", "lyon-hall-radar", "lyon-hall-3"]
    assert out.count("\n") == SAMPLE.count("\n")
    assert [ln for ln in out.splitlines() if ln.lstrip().startswith("#")] == [
        ln for ln in SAMPLE.splitlines() if ln.lstrip().startswith("#")]


def test_core_registry_block_list_and_missing_list() -> None:
    text = SAMPLE.replace("devices: [lyon-counter-1]",
                          "devices:\n                  - lyon-counter-1")
    out = core.add_to_registry(text, SITE, "counter-1", "c-9")
    assert _devices(out, "counter-1") == ["lyon-counter-1", "c-9"]
    no_list = SAMPLE.replace("                devices: [lyon-counter-1]\n", "")
    out = core.add_to_registry(no_list, SITE, "counter-1", "c-9")
    assert _devices(out, "counter-1") == ["c-9"]


def test_core_registry_refuses_duplicates_naming_the_line() -> None:
    line = next(n for n, text in enumerate(SAMPLE.splitlines(), 1) if "lyon-counter-1]" in text)
    with pytest.raises(ProvisionError, match=f"registry.yaml:{line}: device 'lyon-counter-1'"):
        core.add_to_registry(SAMPLE, SITE, "hall", "lyon-counter-1")


def test_core_registry_unknown_site_or_room() -> None:
    with pytest.raises(ProvisionError, match="no site 'nowhere'"):
        core.add_to_registry(SAMPLE, "nowhere", "hall", "d")
    with pytest.raises(ProvisionError, match="no room 'attic'"):
        core.add_to_registry(SAMPLE, SITE, "attic", "d")


def test_core_firmware_files_leave_host_caches_behind() -> None:
    found = ["main.py", "boot.py", "README.md", "mypy.ini", "softplace_fw/app.py",
             "softplace_fw/__pycache__/app.cpython-311.pyc", "softplace_fw/drivers/pir.py",
             "softplace_fw/drivers/__pycache__/pir.cpython-311.pyc", "tests/test_app.py",
             "tests/node_modules/x/y.py", "stubs/mqtt_as.pyi", "lib/mqtt_as/__init__.py",
             "lib/mqtt_as/LICENSE", "softplace_fw/.mypy_cache/x.py"]
    assert core.firmware_files(found) == [
        "boot.py", "lib/mqtt_as/__init__.py", "main.py", "softplace_fw/app.py",
        "softplace_fw/drivers/pir.py"]
    assert core.device_path("main.py") == ":/main.py"
    assert core.device_path("softplace_fw/drivers/pir.py") == ":/lib/softplace_fw/drivers/pir.py"
    assert core.device_path("lib/mqtt_as/__init__.py") == ":/lib/mqtt_as/__init__.py"


def test_core_live_message_needs_the_device_itself() -> None:
    status = b'{"v": 1, "state": "online", "device": "d"}'
    assert core.is_live_message("softplace/v1/s/dev/d/status", status, False, "s", "d")
    assert not core.is_live_message("softplace/v1/s/dev/d/status", status, True, "s", "d")
    assert not core.is_live_message("softplace/v1/s/dev/d/status", b'{"state": "offline"}',
                                    False, "s", "d")
    assert core.is_live_message("softplace/v1/s/dev/d/reading", b"{}", False, "s", "d")
    assert not core.is_live_message("softplace/v1/s/dev/e/reading", b"{}", False, "s", "d")
