"""The registry's space sheets: opt-in, validated, errors naming the line."""

from __future__ import annotations

import pytest

from softplace.errors import ConfigError
from softplace.registry import SAMPLE_REGISTRY, load_registry, parse_registry


def test_sheet_is_opt_in_per_room() -> None:
    offered = [p.room.id for p in load_registry().placed_rooms() if p.room.offer is not None]
    assert offered == ["meeting-a"]


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("maximum_attendee_capacity: 10", "maximum_attendee_capacity: 12", 76, "exceeds the room"),
    ("amenity_feature: [step_free_access,", "amenity_feature: [jacuzzi,", 74, "step_free_access"),
    ("email: spaces@example.org", "email: nobody", 79, "pattern"),
    ("category: 5}", "category: 6}", 77, "less than or equal to 5"),
])
def test_sheet_error_names_the_line(old: str, new: str, line: int, message: str) -> None:
    text = SAMPLE_REGISTRY.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ConfigError, match=rf"registry\.yaml:{line}:.*{message}"):
        parse_registry(text.replace(old, new), "registry.yaml")
