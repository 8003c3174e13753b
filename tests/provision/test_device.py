"""`softplace device add` and `device install` against the real mosquitto (deploy config),
the real mpy-cross, and esptool's and mpremote's own argument parsers (no serial port)."""

from __future__ import annotations

import argparse
import json
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provision import core, shell
from provision.core import ProvisionError
from provision.settings import ProvisionSettings
from softplace.registry import SAMPLE_REGISTRY, load_registry
from softplace.settings import MqttSettings
from softplace_cli import cli
from tests.deployed_broker import (
    INSTALLER,
    INSTALLER_PASSWORD,
    DeployedBroker,
    Probe,
    running,
)

ROOT = Path(__file__).resolve().parents[2]
SITE = "branch-lyon-part-dieu"
PORT = "/dev/ttyUSB0"


def _settings(tmp_path: Path, **extra: object) -> ProvisionSettings:
    return ProvisionSettings(broker_dir=tmp_path / "broker", configs_dir=tmp_path / "configs",
                             mqtt_host="broker.example", wifi_ssid="facilities",
                             wifi_password="wifi-pw", **extra)  # type: ignore[arg-type]


def _registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    shutil.copy(SAMPLE_REGISTRY, path)
    return path


def test_device_add_writes_account_acl_config_and_registry(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    registry = _registry(tmp_path)
    added = shell.add_device(settings, registry, SITE, "counter-2", "lyon-counter-9")
    secrets = json.loads(added.secrets.read_text())
    public = json.loads(added.config.read_text())
    assert public["site"] == SITE and public["device"] == "lyon-counter-9"
    assert secrets["mqtt_user"] == "lyon-counter-9" and len(secrets["mqtt_password"]) >= 24
    assert oct(added.secrets.stat().st_mode & 0o777) == "0o600"
    line = added.passwd.read_text().strip()
    assert core.check_password_line(line, secrets["mqtt_password"])
    assert core.acl_entries(SITE, "lyon-counter-9") in added.acl.read_text()
    room = load_registry(registry).site(SITE).room("counter-2").room
    assert "lyon-counter-9" in room.devices


def test_device_add_refuses_duplicates_and_changes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    registry = _registry(tmp_path)
    shell.add_device(settings, registry, SITE, "counter-2", "lyon-counter-9")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ProvisionError, match=r"passwd:1: device 'lyon-counter-9'"):
        shell.add_device(settings, registry, SITE, "hall", "lyon-counter-9")
    with pytest.raises(ProvisionError, match=r"registry.yaml:\d+: device 'lyon-hall-door'"):
        shell.add_device(settings, registry, SITE, "hall", "lyon-hall-door")
    with pytest.raises(ProvisionError, match="reserved"):
        shell.add_device(settings, registry, SITE, "hall", "softplace-ingest")
    with pytest.raises(ProvisionError, match="sample registry"):
        shell.add_device(settings, None, SITE, "hall", "new-one")
    with pytest.raises(ProvisionError, match="sample registry"):  # named by the sample config
        shell.add_device(settings, SAMPLE_REGISTRY.parent / ".." / "samples" / "registry.yaml",
                         "branch-lyon-part-dieu", "hall", "new-one")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_device_add_command_line(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    config = tmp_path / "softplace.yaml"
    config.write_text(f"registry: {registry}\nprovision:\n  broker_dir: {tmp_path / 'b'}\n"
                      f"  configs_dir: {tmp_path / 'c'}\n  mqtt_host: broker.example\n")
    runner = CliRunner()
    args = ["-c", str(config), "device", "add", "--site", SITE, "--room", "hall", "hall-3"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    again = runner.invoke(cli, args)
    assert again.exit_code != 0 and "already has an account" in again.output


@pytest.mark.services
def test_device_add_account_connects_to_the_deploy_broker(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    shell.add_device(settings, _registry(tmp_path), SITE, "counter-2", "lyon-counter-9")
    password = json.loads((settings.configs_dir / "lyon-counter-9" / core.SECRETS_FILE)
                          .read_text())["mqtt_password"]
    with running(tmp_path / "mq", {}, devices_from=settings.broker_dir) as broker:
        installer = Probe.connect(broker.port, INSTALLER, INSTALLER_PASSWORD)
        assert installer.subscribe(f"softplace/v1/{SITE}/dev/+/reading")
        device = Probe.connect(broker.port, "lyon-counter-9", password)
        assert device.connected
        assert device.publish(f"softplace/v1/{SITE}/dev/lyon-counter-9/reading", b"r")
        assert not device.publish("softplace/v1/s/dev/lyon-counter-9/reading", b"r")
        assert installer.received(0.7) == [
            (f"softplace/v1/{SITE}/dev/lyon-counter-9/reading", b"r", False)]
        assert not Probe.connect(broker.port, "lyon-counter-9", password + "x").connected


# --- device install ---------------------------------------------------------------------


def _esptool_parse(argv: Sequence[str]) -> str:
    """Parse a ``python -m esptool ...`` line with esptool's own click parser; the command."""
    from esptool import cli as esptool_cli

    assert list(argv[1:3]) == ["-m", "esptool"]
    esptool_cli._esp = None  # set by its __call__, which would run the command
    ctx = esptool_cli.make_context("esptool", list(argv[3:]))
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    name, command, sub = esptool_cli.resolve_command(ctx, rest)
    assert command is not None and name is not None
    with ctx, command.make_context(name, sub, parent=ctx) as sub_ctx:  # UsageError if wrong
        assert ctx.params["chip"] == "esp32" and ctx.params["port"] == PORT
        for _address, image in sub_ctx.params.get("addr_filename") or ():
            image.close()  # esptool's argument type opens the image itself
    return str(name)


def _mpremote_parse(argv: Sequence[str]) -> list[tuple[str, argparse.Namespace]]:
    """Parse an mpremote chain as mpremote's main() does, without running any command."""
    from mpremote import main as mp

    mp.prepare_command_expansions(mp.load_user_config())
    remaining = list(argv[1:])
    parsed = []
    while remaining:
        if remaining[0] == "+":
            remaining.pop(0)
            continue
        mp.do_command_expansion(remaining)
        cmd = remaining.pop(0)
        _handler, parser_func = mp._COMMANDS[cmd]
        terminator = remaining.index("+") if "+" in remaining else len(remaining)
        command_args, extra = remaining[:terminator], remaining[terminator:]
        parser = parser_func()
        parser.prog = cmd
        parser.add_argument("next_command", nargs=argparse.REMAINDER)
        args = parser.parse_args(command_args)
        parsed.append((cmd, args))
        remaining = args.next_command + extra
    return parsed


def _firmware_copy(tmp_path: Path) -> Path:
    firmware = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", firmware,
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    for cache in (firmware / "softplace_fw" / "__pycache__", firmware / "lib" / "mqtt_as" /
                  "__pycache__"):
        cache.mkdir()
        (cache / "app.cpython-311.pyc").write_bytes(b"host cache")
    return firmware


class _Device:
    """Stands in for the serial port only: checks each command line with the real tool's
    parser and, when mpremote resets the board, "boots" by publishing as the device."""

    def __init__(self, broker: DeployedBroker | None, password: str, device: str) -> None:
        self.broker = broker
        self.password = password
        self.device = device
        self.esptool: list[str] = []
        self.copied: list[tuple[str, str]] = []

    def __call__(self, argv: Sequence[str]) -> None:
        if argv[1:3] == ["-m", "esptool"]:
            self.esptool.append(_esptool_parse(argv))
            return
        commands = _mpremote_parse(argv)
        assert commands[0][0] == "connect" and commands[0][1].device == [PORT]
        assert commands[-1][0] == "exec" and "reset" in commands[-1][1].expr[0]
        for cmd, args in commands:
            if cmd == "fs":
                assert args.command == ["cp"]
                local, remote = args.path
                assert Path(local).is_file(), local
                self.copied.append((local, remote))
        if self.broker is not None:
            threading.Thread(target=self._boot, daemon=True).start()

    def _boot(self) -> None:
        assert self.broker is not None
        probe = Probe.connect(self.broker.port, self.device, self.password)
        probe.publish(f"softplace/v1/{SITE}/dev/{self.device}/status",
                      b'{"v": 1, "state": "online", "device": "%s"}' % self.device.encode(),
                      retain=True)
        probe.close()


def _installer(broker: DeployedBroker) -> MqttSettings:
    return MqttSettings(url=f"mqtt://127.0.0.1:{broker.port}", username=INSTALLER,
                        password=INSTALLER_PASSWORD)  # type: ignore[arg-type]


@pytest.mark.services
@pytest.mark.slow  # mpy-cross per file
def test_device_install_flashes_copies_and_waits_until_live(tmp_path: Path) -> None:
    settings = _settings(tmp_path, firmware_dir=_firmware_copy(tmp_path), live_timeout_s=20)
    shell.add_device(settings, _registry(tmp_path), SITE, "counter-2", "lyon-counter-9")
    password = json.loads((settings.configs_dir / "lyon-counter-9" / core.SECRETS_FILE)
                          .read_text())["mqtt_password"]
    image = tmp_path / "ESP32_GENERIC.bin"
    image.write_bytes(b"\xe9" + b"\0" * 255)
    with running(tmp_path / "mq", {}, devices_from=settings.broker_dir) as broker:
        device = _Device(broker, password, "lyon-counter-9")
        shell.install(settings, _installer(broker), "lyon-counter-9", PORT, image, run=device)
    assert device.esptool == ["erase-flash", "write-flash"]
    remotes = {remote for _local, remote in device.copied}
    assert {":/main.py", ":/boot.py", ":/config.json", ":/config.local.json",
            ":/lib/mqtt_as/__init__.mpy", ":/lib/softplace_fw/app.mpy",
            ":/lib/softplace_fw/drivers/pir.mpy"} <= remotes
    assert not any("__pycache__" in r or r.endswith((".pyc", ".md", ".pyi")) for r in remotes)
    assert not any("/tests/" in r for r in remotes)
    assert all(Path(local).suffix != ".py" for local, remote in device.copied
               if remote.startswith(":/lib/")), "libraries go compiled"


@pytest.mark.services
def test_device_install_fails_when_the_sensor_stays_silent(tmp_path: Path) -> None:
    settings = _settings(tmp_path, firmware_dir=_firmware_copy(tmp_path), live_timeout_s=1.5,
                         compile_mpy=False)
    shell.add_device(settings, _registry(tmp_path), SITE, "counter-2", "lyon-counter-9")
    password = json.loads((settings.configs_dir / "lyon-counter-9" / core.SECRETS_FILE)
                          .read_text())["mqtt_password"]
    with running(tmp_path / "mq", {}, devices_from=settings.broker_dir) as broker:
        # a retained "online" from an earlier boot is there; it must not count
        old = Probe.connect(broker.port, "lyon-counter-9", password)
        assert old.publish(f"softplace/v1/{SITE}/dev/lyon-counter-9/status",
                           b'{"v": 1, "state": "online"}', retain=True)
        old.close()
        device = _Device(None, password, "lyon-counter-9")
        with pytest.raises(ProvisionError, match=r"no status or reading within 1\.5 s"):
            shell.install(settings, _installer(broker), "lyon-counter-9", PORT, None,
                          run=device)
    assert device.esptool == [], "no --flash: esptool is not run"
    assert device.copied


def test_device_install_command_lines_are_refused_when_wrong() -> None:
    """The parsers used above do reject bad lines (so the checks can fail)."""
    with pytest.raises(click.UsageError):
        _esptool_parse(["python", "-m", "esptool", "--chip", "esp32", "--port", PORT,
                        "write-flash", "-z", "0x1000"])
    with pytest.raises(SystemExit):
        _mpremote_parse(["mpremote", "connect", PORT, "+", "exec"])
