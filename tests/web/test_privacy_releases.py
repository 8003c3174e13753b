"""The privacy officer's page and the regulator's releases: what they show and let download."""

from __future__ import annotations

import json
import re

from tests.web.conftest import Served
from tests.web.fixtures import RELEASE_FOLDER
from web.users import Role


def test_releases_api_lists_the_exported_release(served: Served) -> None:
    package = json.loads(
        (served.data.settings.web.releases_dir / RELEASE_FOLDER / "datapackage.json").read_text())
    with served.login(Role.REGULATOR) as client:
        (release,) = client.get("/api/releases").json()
    privacy = package["softplace:privacy"]
    assert release["id"] == RELEASE_FOLDER and release["release"] == privacy["id"]
    assert release["epsilon"] == privacy["epsilon"] and release["k"] == privacy["k"]
    assert release["error"] == {q["quantity"]: q["bound"] for q in privacy["noise"]}
    assert 0 < release["coverage"] <= 1


def test_releases_regulator_downloads_the_datapackage_and_csv(served: Served) -> None:
    folder = served.data.settings.web.releases_dir / RELEASE_FOLDER
    with served.login(Role.REGULATOR) as client:
        page = client.get("/releases").text
        links = re.findall(r'href="(/releases/[^"]+)"', page)
        bodies = {link.rsplit("/", 1)[1]: client.get(link) for link in links}
        traversal = client.get(f"/releases/{RELEASE_FOLDER}/..%2F..%2Fstore.sqlite")
        other = client.get(f"/api/releases/{RELEASE_FOLDER}/softplace.yaml")
    assert set(bodies) == {"datapackage.json", "regulator_aggregate.csv"}
    for name, response in bodies.items():
        assert response.status_code == 200
        assert response.content == (folder / name).read_bytes()
    assert traversal.status_code == 404 and other.status_code == 404


def test_releases_page_shows_no_room_and_no_count(served: Served) -> None:
    rooms = [p.room.id for p in served.data.registry.placed_rooms()]
    with served.login(Role.REGULATOR) as client:
        page = client.get("/releases").text
    assert "Live" not in page and "Branch report" not in page  # no link to other pages
    assert not [r for r in rooms if f"({r})" in page or f">{r}<" in page]


def test_privacy_page_shows_audit_retention_inventory_and_ledger(served: Served) -> None:
    with served.login(Role.PRIVACY_OFFICER) as client:
        page = client.get("/privacy").text
    # the app's clock is held a day after the week: the store is within policy
    assert re.search(r'id="audit-status" class="ok">PASS<', page)
    for family in ("raw", "derived", "aggregates"):
        row = re.search(rf'<tr data-family="{family}">.*?</tr>', page, re.S)
        assert row is not None
    raw = re.search(r'data-family="raw">.*?class="oldest">([^<]+)<', page, re.S)
    assert raw is not None and raw[1].startswith("2026-11-1")
    assert 'data-recipient="regulator"' in page
    assert "<code>room_count</code>" in page and "web accounts" in page
