"""The ``web:`` section of the settings file.

Import-light on purpose (pydantic only): the application assembles the settings model from
every stage's section, and ``softplace gateway`` must not load the web stack.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from softplace.settings import LocalHolding, StageSection, beside_config

USERS_FILE = "web-users.sqlite"


class WebSettings(StageSection):
    host: str = Field(default="127.0.0.1", description="address the app listens on")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port")
    users_path: Path | None = Field(
        default=None,
        description="SQLite file of accounts and sessions; None = web-users.sqlite next to"
        " the settings file (or in .softplace/ without one)",
    )
    secure_cookies: bool = Field(
        default=True,
        description="session cookie only over HTTPS; false for plain-HTTP localhost",
    )
    session_hours: float = Field(
        default=8, gt=0, le=24 * 30, description="a session expires this long after login"
    )
    login_attempts: int = Field(
        default=5, ge=1, le=1000,
        description="failed logins allowed per user name and per client in login_window_s",
    )
    login_window_s: float = Field(
        default=300, gt=0, le=86_400, description="the login rate limit's window"
    )
    releases_dir: Path = Field(
        default=Path("release"),
        description="folder of releases, one sub-folder per `softplace export --out`",
    )
    live_poll_s: float = Field(
        default=5, ge=1, le=600, description="how often the live view asks for new state"
    )

    def users_file(self, config: Path | None) -> Path:
        return beside_config(self.users_path, config, USERS_FILE)

    def local_holdings(self) -> list[LocalHolding]:
        return [LocalHolding(
            what="web accounts",
            description="Operator accounts of the web app (name, role, argon2 hash) and their"
            " open sessions (token hash, expiry).",
            keys=["name"], fields=["role: str", "password_hash: str", "expires_ms: int"],
            where=f"SQLite {self.users_path or USERS_FILE + ' next to the settings file'}",
            retention="accounts until removed; sessions until they expire",
            recipients=["operator: administrators"],
            personal_data="Operator staff user names: personal data of the staff, not of the"
            " people counted.",
        )]
