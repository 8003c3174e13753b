"""In Debian's chromium: each role logs in and opens its pages (axe-core finds no serious
violation), the charts carry the report's numbers, the CSV and a release download, and the
report fits a phone and prints on A4."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.print_page_options import PrintOptions
from selenium.webdriver.remote.webdriver import WebDriver

from detector.report import Report
from tests.web.browser import axe_violations, chromium, log_in, screenshot, wait_until
from tests.web.conftest import Served
from tests.web.fixtures import FIRST, LAST, RELEASE_FOLDER, SITE
from web.users import Role

pytestmark = pytest.mark.slow  # spawns chromium

Q = f"start={FIRST}&end={LAST}"
PAGES: dict[Role, list[tuple[str, str]]] = {
    Role.FACILITIES: [("live", "/live"), ("report", f"/report?{Q}"),
                      ("bookings", "/manage/bookings")],
    Role.MANAGER: [("report", f"/report?{Q}"), ("bookings", "/manage/bookings")],
    Role.PRIVACY_OFFICER: [("privacy", "/privacy"), ("releases", "/releases")],
    Role.REGULATOR: [("releases", "/releases")],
}
A4_MM = (210, 297)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    with chromium(downloads) as driver:
        yield driver


@pytest.mark.parametrize("role", list(Role))
def test_browser_role_opens_its_pages_with_no_serious_axe_violation(
    browser: WebDriver, served: Served, role: Role, tmp_path: Path
) -> None:
    log_in(browser, served.url, role)
    for name, route in PAGES[role]:
        browser.get(served.url + route)
        assert browser.find_element(By.TAG_NAME, "h1").text
        assert "Not for this role" not in browser.title
        assert axe_violations(browser) == [], f"{role} {name}"
        screenshot(browser, tmp_path, f"{role.value}-{name}")
    links = {a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "nav a")}
    assert links == {served.url + route.split("?")[0] for _, route in PAGES[role]}


def test_browser_login_page_has_no_serious_axe_violation(
    browser: WebDriver, served: Served, tmp_path: Path
) -> None:
    browser.delete_all_cookies()
    browser.get(served.url + "/login")
    assert axe_violations(browser) == []
    screenshot(browser, tmp_path, "login")


def test_browser_axe_check_catches_a_violation(browser: WebDriver, served: Served) -> None:
    browser.delete_all_cookies()
    browser.get(served.url + "/login")
    browser.execute_script("document.getElementById('name').removeAttribute('id');")
    assert {v["id"] for v in axe_violations(browser)} == {"label"}


def test_browser_report_charts_carry_the_report_numbers(
    browser: WebDriver, served: Served, expected: Report
) -> None:
    log_in(browser, served.url, Role.MANAGER)
    browser.get(f"{served.url}/report?{Q}")
    bars = browser.execute_script(
        "return [...document.querySelectorAll('#chart-rooms g.bar')]"
        ".map(g => [g.dataset.key, Number(g.dataset.value), g.querySelector('rect')"
        ".getBoundingClientRect().width]);"
    )
    assert [(k, v) for k, v, _ in bars] == [(r.room, r.utilisation_rate) for r in expected.rooms]
    widths = {k: w for k, _, w in bars}
    busiest = max(expected.rooms, key=lambda r: r.utilisation_rate)
    idlest = min(expected.rooms, key=lambda r: r.utilisation_rate)
    assert widths[busiest.room] > widths[idlest.room]  # drawn, not only labelled
    total = browser.find_element(By.ID, "total-idle").get_attribute("data-value")
    assert float(total or "nan") == pytest.approx(expected.total_idle_m2h)
    rows = browser.find_elements(By.CSS_SELECTOR, "#breaches tbody tr")
    assert len(rows) == len(expected.breaches)
    heat = browser.find_elements(By.CSS_SELECTOR, "svg.heatmap")
    assert len(heat) == len(list(served.data.registry.site(SITE).placed_rooms()))


def test_browser_downloads_the_report_csv(
    browser: WebDriver, served: Served, expected: Report, downloads: Path
) -> None:
    log_in(browser, served.url, Role.MANAGER)
    browser.get(f"{served.url}/report?{Q}")
    browser.find_element(By.ID, "csv").click()
    name = f"softplace-{SITE}-{FIRST}-{LAST}.csv"
    path = wait_until(lambda: (downloads / name).exists() and downloads / name,
                      f"{name} was not downloaded: {list(downloads.iterdir())}")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r["room"] for r in rows if r["section"] == "room"] == [r.room for r in expected.rooms]


def test_browser_regulator_downloads_a_release(
    browser: WebDriver, served: Served, downloads: Path
) -> None:
    log_in(browser, served.url, Role.REGULATOR)
    browser.get(f"{served.url}/releases")
    assert browser.find_element(By.CSS_SELECTOR, f'tr[data-release="{RELEASE_FOLDER}"]')
    browser.find_element(By.LINK_TEXT, "datapackage.json").click()
    path = downloads / f"{RELEASE_FOLDER}-datapackage.json"
    wait_until(lambda: path.exists() and path.stat().st_size > 0, "no datapackage downloaded")
    source = served.data.settings.web.releases_dir / RELEASE_FOLDER / "datapackage.json"
    assert path.read_bytes() == source.read_bytes()


def test_browser_report_fits_a_phone_and_prints_on_a4(
    browser: WebDriver, served: Served, tmp_path: Path
) -> None:
    log_in(browser, served.url, Role.MANAGER)
    browser.set_window_size(390, 844)  # a phone, portrait
    try:
        browser.get(f"{served.url}/report?{Q}")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;")
        assert overflow <= 0, "the page scrolls sideways on a phone"
        screenshot(browser, tmp_path, "manager-report-phone")
    finally:
        browser.set_window_size(1280, 900)
    options = PrintOptions()
    options.page_width, options.page_height = A4_MM[0] / 10, A4_MM[1] / 10
    pdf = base64.b64decode(browser.print_page(options))
    assert pdf.startswith(b"%PDF")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        hidden = browser.execute_script(
            "return getComputedStyle(document.querySelector('header.top')).display;")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert hidden == "none"
