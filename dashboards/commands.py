"""``softplace dashboards build|check|push``."""

from __future__ import annotations

from pathlib import Path

import click

from dashboards import build as builder
from dashboards.push import FOLDER_UID, InfluxTarget, connect, push
from softplace.cli import AppContext, console, pass_app


@click.group()
def dashboards() -> None:
    """Grafana dashboards generated from code."""


@dashboards.command("build")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              default=builder.JSON_DIR, show_default=True, help="where the JSON goes")
@click.option("--check", is_flag=True, help="write nothing; fail if the files are stale")
def build_command(out: Path, check: bool) -> None:
    """Regenerate dashboards/json/*.json from dashboards/panels.py."""
    if check:
        stale = builder.stale(out)
        if stale:
            raise click.ClickException(
                f"stale dashboards in {out}: {', '.join(stale)}; run: softplace dashboards build"
            )
        console.print(f"dashboards in {out} are up to date")
        return
    for path in builder.write(out):
        console.print(f"wrote {path}")


@dashboards.command("push")
@click.option("--url", envvar="GRAFANA_URL", required=True,
              help="Grafana base URL, e.g. https://grafana.example.org [GRAFANA_URL]")
@click.option("--token", envvar="GRAFANA_TOKEN", default=None,
              help="service-account token with the Editor role [GRAFANA_TOKEN]")
@click.option("--influx-url", default=None,
              help="InfluxDB URL as Grafana reaches it (default: influxdb.url from settings)")
@click.option("--influx-database", default=None, help="default: influxdb.database")
@click.option("--influx-user", envvar="GRAFANA_INFLUX_USER", default=None,
              help="a read-only InfluxDB user for Grafana [GRAFANA_INFLUX_USER]")
@click.option("--influx-password", envvar="GRAFANA_INFLUX_PASSWORD", default=None,
              help="its password [GRAFANA_INFLUX_PASSWORD]")
@click.option("--folder", default=FOLDER_UID, show_default=True, help="folder uid")
@pass_app
def push_command(
    app: AppContext, *, url: str, token: str | None, influx_url: str | None,
    influx_database: str | None, influx_user: str | None, influx_password: str | None,
    folder: str,
) -> None:
    """Upload the InfluxDB data source and the dashboards (stable uids, overwrite)."""
    influx = app.settings.influxdb
    target = InfluxTarget(
        url=influx_url or influx.url,
        database=influx_database or influx.database,
        user=influx_user,
        password=influx_password,
    )
    uids = push(connect(url, token), target, folder)
    console.print(f"pushed data source and {len(uids)} dashboards to {url}: {', '.join(uids)}")
