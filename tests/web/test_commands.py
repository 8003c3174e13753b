"""``softplace web user add|list|remove`` through the assembled command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from softplace_cli import cli
from web.server import free_port
from web.users import Role, UserStore

PASSWORD = "a long enough password"


@pytest.mark.slow  # argon2 at its real cost, several times
def test_web_user_add_reads_the_password_from_stdin_next_to_the_config(tmp_path: Path) -> None:
    config = tmp_path / "softplace.yaml"
    config.write_text("storage:\n  backend: sqlite\n", encoding="utf-8")
    runner = CliRunner()
    added = runner.invoke(cli, ["--config", str(config), "web", "user", "add", "ana",
                                "--role", "privacy_officer"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["--config", str(config), "web", "user", "list"])
    assert listed.output.split() == ["ana", "privacy_officer"]
    with UserStore(tmp_path / "web-users.sqlite") as users:
        user = users.authenticate("ana", PASSWORD)
    assert user is not None and user.role is Role.PRIVACY_OFFICER
    again = runner.invoke(cli, ["--config", str(config), "web", "user", "add", "ana",
                                "--role", "manager"], input=PASSWORD + "\n")
    assert again.exit_code != 0 and "exists" in str(again.exception)
    removed = runner.invoke(cli, ["--config", str(config), "web", "user", "remove", "ana"])
    assert removed.exit_code == 0
    assert runner.invoke(cli, ["--config", str(config), "web", "user", "list"]).output == ""


def test_web_user_add_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["web", "user", "add", "bob", "--role", "admin"],
                                input=PASSWORD + "\n")
    assert result.exit_code == 2 and "admin" in result.output


@pytest.mark.slow  # a real `softplace web` process
def test_web_command_serves_the_app(tmp_path: Path) -> None:
    config = tmp_path / "softplace.yaml"
    config.write_text(f"storage:\n  sqlite_path: {tmp_path / 'store.sqlite'}\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "softplace_cli", "--config", str(config), "web", "--port",
         str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "softplace web did not answer"
                time.sleep(0.2)
        assert response.json() == {"ok": True}
        login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert "__Host-" not in login.headers["set-cookie"]  # the pre-login CSRF cookie
        assert login.headers["strict-transport-security"]  # secure_cookies defaults to true
    finally:
        process.terminate()
        process.communicate(timeout=20)
