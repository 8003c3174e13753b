"""Firmware payloads and topics against the services' contracts (softplace.messages/topics)."""

import json
import sys
from pathlib import Path

import pytest
from softplace_fw import payload
from softplace_fw import topics as fw_topics

from softplace import messages
from softplace import topics as service_topics
from tests.firmware.paths import FW_TESTS, ROOT

FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("firmware_*.json"))


def test_fw_fixtures_exist() -> None:
    assert {p.name for p in FIXTURES} >= {"firmware_readings.json", "firmware_status.json"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fw_fixture_validates(path: Path) -> None:
    for item in json.loads(path.read_text()):
        model = messages.DeviceStatus if "state" in item else messages.DeviceReading
        parsed = messages.parse_message(model, payload.encode(item))
        assert json.loads(parsed.to_json()) == item, "exclude_none round trip is lossless"


def test_fw_fixtures_match_the_core() -> None:
    sys.path.insert(0, str(FW_TESTS))
    import make_fixtures

    for name, items in make_fixtures.fixtures().items():
        committed = (ROOT / "tests" / "fixtures" / name).read_text()
        assert committed == make_fixtures.render(items), (
            f"{name} is stale: run python firmware/tests/make_fixtures.py"
        )


def test_fw_topics_mirror_services() -> None:
    for site, device in (("hq", "esp32-01"), ("branch.7", "a_b-c")):
        assert fw_topics.reading(site, device) == service_topics.device_reading(site, device)
        assert fw_topics.status(site, device) == service_topics.device_status(site, device)
        assert fw_topics.config(site, device) == service_topics.device_config(site, device)
        # the shared protocol's ack topic (kernel: softplace.topics.device_ack)
        assert fw_topics.ack(site, device) == f"{service_topics.PREFIX}/{site}/dev/{device}/ack"
        kernel_ack = getattr(service_topics, "device_ack", None)
        if kernel_ack is not None:
            assert fw_topics.ack(site, device) == kernel_ack(site, device)
    for bad in ("", "-x", "a/b", "+", "a" * 65, "é"):
        with pytest.raises(ValueError):
            fw_topics.reading(bad, "d")
        with pytest.raises(ValueError):
            service_topics.check_segment(bad, "site")
