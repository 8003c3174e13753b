"""``softplace device add`` and ``softplace device install``: thin shells over the core."""

from __future__ import annotations

from pathlib import Path

import click

from provision import shell
from provision.core import ProvisionError
from provision.settings import ProvisionSettings
from softplace.cli import AppContext, console, pass_app


@click.group("device")
def device() -> None:
    """Provision sensors: broker account, config, registry entry; install the firmware."""


@device.command("add")
@click.option("--site", required=True, help="site id from the registry")
@click.option("--room", required=True, help="room id in that site")
@click.option("--sensor", default=None, help="ld2410, vl53l1x or pir (default: provision.sensor)")
@click.argument("device_id", metavar="DEVICE")
@pass_app
def add(app: AppContext, site: str, room: str, sensor: str | None, device_id: str) -> None:
    """Create DEVICE's broker account, ACL entries, config and registry entry."""
    try:
        added = shell.add_device(app.section(ProvisionSettings), app.settings.registry, site,
                                 room, device_id, sensor)
    except ProvisionError as err:
        raise click.ClickException(str(err)) from err
    console.print(f"{device_id}: account in {added.passwd}, ACL in {added.acl}, config in "
                  f"{added.config.parent}, registry {added.registry}")
    console.print("restart the broker to load the account: docker compose restart mosquitto")


@device.command("install")
@click.argument("device_id", metavar="DEVICE")
@click.option("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
@click.option("--flash", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="MicroPython image to flash first (erases the board)")
@pass_app
def install(app: AppContext, device_id: str, port: str, flash: Path | None) -> None:
    """Copy the firmware, mqtt_as and DEVICE's config over USB, then wait until it is live."""
    try:
        shell.install(app.section(ProvisionSettings), app.settings.mqtt, device_id, port,
                      flash)
    except ProvisionError as err:
        raise click.ClickException(str(err)) from err
    console.print(f"{device_id} is live")
