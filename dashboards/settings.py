"""The ``dashboards:`` section of the settings file (see ``dashboards/README.md``).

What ``softplace dashboards push`` needs to reach Grafana and to tell Grafana where InfluxDB
is; each option can also be given on the command line, which wins.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from softplace.settings import StageSection

FOLDER_UID = "softplace"


class DashboardsSettings(StageSection):
    grafana_url: str | None = Field(
        default=None, description="Grafana base URL, e.g. https://grafana.example.org"
    )
    grafana_token: SecretStr | None = Field(
        default=None, description="service-account token with the Editor role"
    )
    folder: str = Field(default=FOLDER_UID, description="uid of the folder the dashboards go into")
    influx_url: str | None = Field(
        default=None, description="InfluxDB URL as Grafana reaches it; null = influxdb.url"
    )
    influx_database: str | None = Field(
        default=None, description="the database Grafana reads; null = influxdb.database"
    )
    influx_user: str | None = Field(
        default=None, description="a read-only InfluxDB user for Grafana"
    )
    influx_password: SecretStr | None = Field(default=None, description="its password")
