"""InfluxStore's own line protocol writer against influxdb-client's ``Point``, an
independent implementation of the same format."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from softplace.schema import SERIES
from softplace.storage.base import FieldValue, Sample
from softplace.storage.influx import to_line

_VALUES: dict[str, st.SearchStrategy[FieldValue]] = {
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "str": st.text(max_size=12),
    "bool": st.booleans(),
}
_TEXT = st.text(alphabet=st.sampled_from('ab ,=\\"\n\t\r\'é'), max_size=6)


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    known = draw(st.sampled_from(list(SERIES.values())))
    tags = draw(st.dictionaries(st.sampled_from(known.tags), _TEXT)) if known.tags else {}
    names = draw(st.lists(st.sampled_from(sorted(known.fields)), min_size=1, unique=True))
    fields: dict[str, FieldValue] = {n: draw(_VALUES[known.fields[n]]) for n in names}
    return Sample(known.name, tags, fields, draw(st.integers(0, 2**52)))


def _point_line(sample: Sample) -> str:
    point = Point(sample.series)
    for key, tag in sorted(sample.tags.items()):
        point.tag(key, tag)
    for key, value in sorted(sample.fields.items()):
        point.field(key, value)
    point.time(sample.time_ms, WritePrecision.MS)
    line: str = point.to_line_protocol()
    return line


@settings(max_examples=300, deadline=None)
@given(sample=samples())
def test_to_line_matches_influxdb_client_point(sample: Sample) -> None:
    assert to_line(sample) == _point_line(sample)


def test_to_line_leaves_out_non_finite_floats_and_empty_tags() -> None:
    sample = Sample("room_measure", {"site": "s 1", "room": ""},
                    {"used_h": math.inf, "available_h": 1.0}, 5)
    assert to_line(sample) == "room_measure,site=s\\ 1 available_h=1 5"
    assert to_line(sample) == _point_line(sample)
