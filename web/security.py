"""Who may see what, the login rate limit and the security headers: plain values, no I/O."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from enum import StrEnum

from web.users import Role


class Area(StrEnum):
    """A group of pages and API routes; each role is granted some."""

    REPORTS = "reports"  # sites, rooms, reports, intervals, slots
    LIVE = "live"  # live room state, sensor health
    PRIVACY = "privacy"  # audit, inventory, retention, ledger
    RELEASES = "releases"  # anonymised releases, and nothing else


GRANTS: dict[Role, frozenset[Area]] = {
    Role.FACILITIES: frozenset({Area.LIVE, Area.REPORTS}),
    Role.MANAGER: frozenset({Area.REPORTS}),
    Role.PRIVACY_OFFICER: frozenset({Area.PRIVACY, Area.RELEASES}),
    Role.REGULATOR: frozenset({Area.RELEASES}),
}
HOME: dict[Area, str] = {
    Area.LIVE: "/live", Area.REPORTS: "/report", Area.PRIVACY: "/privacy",
    Area.RELEASES: "/releases",
}
HOME_ORDER = (Area.LIVE, Area.REPORTS, Area.PRIVACY, Area.RELEASES)


def home(role: Role) -> str:
    return next(HOME[a] for a in HOME_ORDER if a in GRANTS[role])


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = ("Strict-Transport-Security", "max-age=31536000")


class LoginLimiter:
    """At most ``attempts`` failures per key (user name, client address) in ``window_s``.

    In memory: one app process serves the operator's few users; a restart forgets, which
    costs an attacker a restart per window, not a way round argon2's cost.
    """

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float]) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        times = self._failures.setdefault(key, collections.deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        now = self._clock()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def fail(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeed(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)
