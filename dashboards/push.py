"""Upload the data source and the dashboards to an existing Grafana, idempotently.

The payloads are built by pure functions (tested without a server); ``push()`` sends them
with grafana-client: the data source is created or updated by its stable uid, the folder
created once, and each dashboard posted with ``overwrite: true`` under its stable uid, so
pushing twice leaves Grafana as pushing once did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dashboards.build import dashboard_json
from dashboards.panels import DASHBOARDS
from dashboards.settings import FOLDER_UID
from dashboards.spec import (
    DATASOURCE_MIN_INTERVAL,
    DATASOURCE_NAME,
    DATASOURCE_TYPE,
    DATASOURCE_UID,
)
from softplace.errors import SoftPlaceError

log = logging.getLogger(__name__)

FOLDER_TITLE = "SoftPlace"
_NOT_FOUND = 404


class PushError(SoftPlaceError):
    """Grafana refused or could not be reached; the message says which step failed."""


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    """How Grafana reaches InfluxDB (its URL as seen from Grafana, not from here)."""

    url: str
    database: str
    user: str | None = None
    password: str | None = None


def datasource_payload(target: InfluxTarget) -> dict[str, Any]:
    """The InfluxQL data source, as Grafana's ``/api/datasources`` takes it."""
    payload: dict[str, Any] = {
        "access": "proxy",
        "basicAuth": False,
        "isDefault": True,
        "jsonData": {
            "dbName": target.database,
            "httpMode": "GET",
            "timeInterval": DATASOURCE_MIN_INTERVAL,
            "version": "InfluxQL",
        },
        "name": DATASOURCE_NAME,
        "readOnly": False,
        "type": DATASOURCE_TYPE,
        "uid": DATASOURCE_UID,
        "url": target.url,
    }
    if target.user:
        payload["user"] = target.user
    if target.password:
        payload["secureJsonData"] = {"password": target.password}
    return payload


def dashboard_payload(dashboard: Mapping[str, Any], folder_uid: str = FOLDER_UID) -> dict[str, Any]:
    """``POST /api/dashboards/db`` body: overwrite by uid, never by numeric id."""
    model = dict(dashboard)
    model["id"] = None
    return {
        "dashboard": model,
        "folderUid": folder_uid,
        "message": "softplace dashboards push",
        "overwrite": True,
    }


def all_dashboard_payloads(folder_uid: str = FOLDER_UID) -> list[dict[str, Any]]:
    return [dashboard_payload(dashboard_json(d), folder_uid) for d in DASHBOARDS]


class _Datasources(Protocol):
    def get_datasource_by_uid(self, datasource_uid: str) -> Any: ...
    def create_datasource(self, datasource: Any) -> Any: ...
    def update_datasource_by_uid(self, datasource_uid: str, datasource: Any) -> Any: ...


class _Folders(Protocol):
    def get_folder(self, uid: str) -> Any: ...
    def create_folder(self, title: str, uid: str | None = None) -> Any: ...


class _Dashboards(Protocol):
    def update_dashboard(self, dashboard: Any) -> Any: ...


class GrafanaLike(Protocol):
    """The part of ``grafana_client.GrafanaApi`` that ``push`` uses."""

    @property
    def datasource(self) -> _Datasources: ...
    @property
    def folder(self) -> _Folders: ...
    @property
    def dashboard(self) -> _Dashboards: ...


def _status(err: Exception) -> int | None:
    status = getattr(err, "status_code", None)
    return status if isinstance(status, int) else None


def _exists(lookup: Any, *args: str) -> bool:
    from grafana_client.client import GrafanaClientError

    try:
        lookup(*args)
    except GrafanaClientError as err:
        if _status(err) == _NOT_FOUND:
            return False
        raise
    return True


def push(api: GrafanaLike, target: InfluxTarget, folder_uid: str = FOLDER_UID) -> list[str]:
    """Create or update the data source, the folder and every dashboard; returns the uids."""
    from grafana_client.client import GrafanaException

    step = "data source"
    try:
        source = datasource_payload(target)
        if _exists(api.datasource.get_datasource_by_uid, DATASOURCE_UID):
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, source)
            log.info("updated data source %s", DATASOURCE_UID)
        else:
            api.datasource.create_datasource(source)
            log.info("created data source %s", DATASOURCE_UID)
        step = "folder"
        if not _exists(api.folder.get_folder, folder_uid):
            api.folder.create_folder(FOLDER_TITLE, uid=folder_uid)
            log.info("created folder %s", folder_uid)
        uids = []
        for payload in all_dashboard_payloads(folder_uid):
            step = f"dashboard {payload['dashboard']['uid']}"
            api.dashboard.update_dashboard(payload)
            uids.append(str(payload["dashboard"]["uid"]))
            log.info("pushed dashboard %s", uids[-1])
    except GrafanaException as err:
        raise PushError(f"grafana refused the {step}: {err}") from err
    except OSError as err:
        raise PushError(f"cannot reach grafana while pushing the {step}: {err}") from err
    return uids


def connect(url: str, token: str | None, timeout_s: float = 10.0) -> Any:
    """A ``GrafanaApi`` for ``url`` with a service-account token (or user:pass in the URL)."""
    from grafana_client.api import GrafanaApi

    try:
        return GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    except (TypeError, ValueError) as err:
        raise PushError(f"--url {url!r}: {err}") from err
