"""Debian's chromium, driven by selenium through Debian's chromedriver, and axe-core."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.web.fixtures import PASSWORD, USERS
from web.users import Role

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = ("chromium", "chromium-browser")
CHROMEDRIVER = ("chromedriver",)
DESKTOP = (1280, 900)
WAIT_S = 20.0
# regenerate the README's and docs/web's screenshots: SOFTPLACE_WEB_SCREENSHOTS=docs/web
SCREENSHOTS_ENV = "SOFTPLACE_WEB_SCREENSHOTS"
SERIOUS = ("serious", "critical")


def _which(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str:
    for name in names:
        found = shutil.which(name) or next((p for p in extra if Path(p).exists()), None)
        if found:
            return found
    pytest.fail(f"{names[0]} not found: install Debian's chromium and chromium-driver "
                "(scripts/test.sh does)", pytrace=False)


@contextmanager
def chromium(downloads: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM, ("/usr/lib/chromium/chromium",))
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--no-first-run", "--disable-extensions",
                     f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--lang=en-GB"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    service = Service(_which(CHROMEDRIVER, ("/usr/lib/chromium/chromedriver",)))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Callable[[], Any], message: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(message)


def log_in(driver: WebDriver, base: str, role: Role) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "name").send_keys(USERS[role])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_until(lambda: "/login" not in driver.current_url, f"{role} could not log in")


def axe_violations(driver: WebDriver) -> list[dict[str, Any]]:
    """Serious or critical axe-core violations on the current page."""
    if not AXE.exists():
        pytest.fail("axe-core missing: (cd tests/web && npm ci)", pytrace=False)
    # executed through the DevTools protocol, which the page's CSP does not govern
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(done, e => done({error: String(e)}));"
    )
    assert "error" not in result, result
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in SERIOUS
    ]


def screenshot(driver: WebDriver, folder: Path, name: str) -> Path:
    """A full-page PNG (the window stretched to the page's height)."""
    target = Path(os.environ.get(SCREENSHOTS_ENV) or folder)
    target.mkdir(parents=True, exist_ok=True)
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 120, 6000))
    path = target / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, DESKTOP[1])
    return path
