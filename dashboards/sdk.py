"""What grafana-foundation-sdk lacks for SoftPlace: an InfluxQL query model, and plain JSON.

The SDK has typed builders for panels, dashboards and alert rules but none for the InfluxDB
data source's query model, so ``InfluxQLQuery`` is that model (a ``Dataquery`` variant,
registered so the SDK's ``from_json`` reads our committed targets back into it) and
``InfluxQLQueryBuilder`` the builder panels and alert rules take. ``to_plain`` turns any
built SDK object into the dicts and lists Grafana reads.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model

INFLUXDB_TYPE = "influxdb"  # the data source plugin id
ResultFormat = Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target, as Grafana's InfluxDB data source stores it."""

    def __init__(
        self, ref_id: str = "", query: str = "", result_format: ResultFormat = "time_series",
        alias: str | None = None, datasource: dashboard_model.DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format: ResultFormat = result_format
        self.alias = alias
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "query": self.query,
            "rawQuery": True,  # the text is the query; no visual query editor model
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        source = data.get("datasource")
        return cls(
            ref_id=data.get("refId", ""), query=data.get("query", ""),
            result_format=data.get("resultFormat", "time_series"), alias=data.get("alias"),
            datasource=dashboard_model.DataSourceRef.from_json(source) if source else None,
        )


class InfluxQLQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    _internal: InfluxQLQuery

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def result_format(self, result_format: ResultFormat) -> Self:
        self._internal.result_format = result_format
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def datasource(self, datasource: dashboard_model.DataSourceRef) -> Self:
        self._internal.datasource = datasource
        return self


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=INFLUXDB_TYPE, from_json_hook=InfluxQLQuery.from_json))


def to_plain(built: object) -> Any:
    """A built SDK object as plain JSON values (through the SDK's own encoder)."""
    return json.loads(json.dumps(built, cls=JSONEncoder))
