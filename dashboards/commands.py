"""``softplace dashboards build|check|push``."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import SecretStr

from dashboards import build as builder
from dashboards.push import InfluxTarget, connect, push
from dashboards.settings import DashboardsSettings
from softplace.cli import AppContext, console, pass_app


@click.group()
def dashboards() -> None:
    """Grafana dashboards generated from code."""


# Relative to the working directory: in a checkout it is the committed JSON; an installed
# package is never written into.
BUILD_OUT = Path("dashboards") / "json"


@dashboards.command("build")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              default=BUILD_OUT, show_default=True,
              help="where the JSON goes (relative to the working directory)")
@click.option("--check", is_flag=True, help="write nothing; fail if the files are stale")
def build_command(out: Path, check: bool) -> None:
    """Regenerate ./dashboards/json/*.json (or --out) from dashboards/panels.py."""
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
@click.option("--url", envvar="GRAFANA_URL", default=None,
              help="Grafana base URL [GRAFANA_URL] (default: dashboards.grafana_url)")
@click.option("--token", envvar="GRAFANA_TOKEN", default=None,
              help="service-account token with the Editor role [GRAFANA_TOKEN] "
              "(default: dashboards.grafana_token)")
@click.option("--influx-url", default=None,
              help="InfluxDB URL as Grafana reaches it (default: dashboards.influx_url, "
              "then influxdb.url)")
@click.option("--influx-database", default=None,
              help="default: dashboards.influx_database, then influxdb.database")
@click.option("--influx-user", envvar="GRAFANA_INFLUX_USER", default=None,
              help="a read-only InfluxDB user for Grafana [GRAFANA_INFLUX_USER] "
              "(default: dashboards.influx_user)")
@click.option("--influx-password", envvar="GRAFANA_INFLUX_PASSWORD", default=None,
              help="its password [GRAFANA_INFLUX_PASSWORD] (default: dashboards.influx_password)")
@click.option("--folder", default=None, help="folder uid (default: dashboards.folder)")
@pass_app
def push_command(
    app: AppContext, *, url: str | None, token: str | None, influx_url: str | None,
    influx_database: str | None, influx_user: str | None, influx_password: str | None,
    folder: str | None,
) -> None:
    """Upload the InfluxDB data source and the dashboards (stable uids, overwrite)."""
    influx = app.settings.influxdb
    own = app.section(DashboardsSettings)
    url = url or own.grafana_url
    if url is None:
        raise click.UsageError(
            "no Grafana URL: pass --url, set GRAFANA_URL or dashboards.grafana_url"
        )
    token = token or _secret(own.grafana_token)
    target = InfluxTarget(
        url=influx_url or own.influx_url or influx.url,
        database=influx_database or own.influx_database or influx.database,
        user=influx_user or own.influx_user,
        password=influx_password or _secret(own.influx_password),
    )
    uids = push(connect(url, token), target, folder or own.folder)
    console.print(f"pushed data source and {len(uids)} dashboards to {url}: {', '.join(uids)}")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
