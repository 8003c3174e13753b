"""The ``provision:`` section of the settings file (see ``provision/README.md``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from softplace.settings import StageSection


class ProvisionSettings(StageSection):
    broker_dir: Path = Field(
        default=Path("deploy/mosquitto/devices"),
        description="device accounts (passwd) and ACL entries (acl) the broker loads at start",
    )
    configs_dir: Path = Field(
        default=Path(".softplace/devices"),
        description="each device's config.json and config.local.json (secrets, mode 0600)",
    )
    mqtt_host: str = Field(default="", description="the broker's name as the devices reach it")
    mqtt_port: int = Field(default=8883, ge=1, le=65535, description="the devices' broker port")
    mqtt_tls: bool = Field(default=True, description="devices connect with TLS")
    wifi_ssid: str = Field(default="", description="the network the devices join")
    wifi_password: SecretStr | None = Field(default=None, description="its password")
    sensor: str = Field(default="ld2410", description="default sensor build: ld2410, vl53l1x, pir")
    ca_cert: Path | None = Field(
        default=None, description="the broker's CA certificate (PEM), installed as /ca.der"
    )
    firmware_dir: Path = Field(default=Path("firmware"), description="the firmware folder")
    compile_mpy: bool = Field(
        default=True, description="compile with mpy-cross before copying (saves device RAM)"
    )
    live_timeout_s: float = Field(
        default=120, gt=0, description="how long install waits for the sensor's first message"
    )

