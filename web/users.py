"""Operator accounts and sessions in one small SQLite file.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended profile). A session is a random token in an HTTP-only cookie; the file keeps
only its SHA-256, so a copy of the file opens no session. Each session carries its own CSRF
token, which every form posts back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from softplace.errors import SoftPlaceError
from softplace.sqlitefile import immediate, open_durable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS session (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES user (name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
"""
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 12
_TOKEN_BYTES = 32


class Role(StrEnum):
    FACILITIES = "facilities"
    MANAGER = "manager"
    PRIVACY_OFFICER = "privacy_officer"
    REGULATOR = "regulator"


class AccountError(SoftPlaceError):
    """An account cannot be created as asked (bad name, short password, exists)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires_ms: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        self._db = open_durable(path, _SCHEMA)
        self._db.execute("PRAGMA foreign_keys=ON")
        # a hash to verify against when the name is unknown: the answer takes as long
        self._dummy = self._hasher.hash(secrets.token_hex(8))

    def add(self, name: str, role: Role, password: str, *, replace: bool = False) -> User:
        if not NAME_PATTERN.match(name):
            raise AccountError(f"user name {name!r}: lower-case letters, digits, . _ -")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
        hashed = self._hasher.hash(password)
        with immediate(self._db):
            exists = self._db.execute("SELECT 1 FROM user WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise AccountError(f"user {name!r} exists (use --replace to reset it)")
            self._db.execute(
                "INSERT OR REPLACE INTO user (name, role, password_hash) VALUES (?, ?, ?)",
                (name, role.value, hashed),
            )
            self._db.execute("DELETE FROM session WHERE name = ?", (name,))
        return User(name, role)

    def remove(self, name: str) -> bool:
        with immediate(self._db):
            self._db.execute("DELETE FROM session WHERE name = ?", (name,))
            return self._db.execute("DELETE FROM user WHERE name = ?", (name,)).rowcount > 0

    def users(self) -> list[User]:
        rows = self._db.execute("SELECT name, role FROM user ORDER BY name").fetchall()
        return [User(n, Role(r)) for n, r in rows]

    def authenticate(self, name: str, password: str) -> User | None:
        row = self._db.execute(
            "SELECT role, password_hash FROM user WHERE name = ?", (name,)
        ).fetchone()
        stored = row[1] if row else self._dummy
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            self._db.execute("UPDATE user SET password_hash = ? WHERE name = ?",
                             (self._hasher.hash(password), name))
        return User(name, Role(row[0]))

    def open_session(self, user: User, now_ms: int, lifetime_ms: int) -> tuple[str, Session]:
        """A new session; returns the cookie token (kept nowhere) and the session."""
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        session = Session(user, secrets.token_urlsafe(_TOKEN_BYTES), now_ms + lifetime_ms)
        with immediate(self._db):
            self._db.execute("DELETE FROM session WHERE expires_ms <= ?", (now_ms,))
            self._db.execute(
                "INSERT INTO session (token_hash, name, csrf, expires_ms) VALUES (?, ?, ?, ?)",
                (_digest(token), user.name, session.csrf, session.expires_ms),
            )
        return token, session

    def session(self, token: str, now_ms: int) -> Session | None:
        row = self._db.execute(
            "SELECT s.csrf, s.expires_ms, u.name, u.role FROM session s"
            " JOIN user u ON u.name = s.name WHERE s.token_hash = ?", (_digest(token),),
        ).fetchone()
        if row is None or row[1] <= now_ms:
            return None
        return Session(User(row[2], Role(row[3])), row[0], int(row[1]))

    def close_session(self, token: str) -> None:
        self._db.execute("DELETE FROM session WHERE token_hash = ?", (_digest(token),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> UserStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
