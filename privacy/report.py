"""The privacy officer's report (Markdown): inventory, policies, audit result, budget spent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from privacy.audit import AuditResult
from privacy.inventory import FILE_KIND, Inventory, inventory_markdown, retention_text
from privacy.ledger import BudgetState, Charge
from softplace.timeutil import ms_to_datetime


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return ms_to_datetime(ms, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_report(
    inventory: Inventory,
    audit: AuditResult,
    budgets: Sequence[BudgetState],
    charges: Sequence[Charge],
    rng: str,
) -> str:
    out = [
        "# SoftPlace privacy report",
        "",
        f"Generated {_when(audit.now_ms)} from the running configuration"
        f" (storage backend: {inventory.backend}). Every table below is computed, not typed.",
        "",
        "## 1. Data inventory",
        "",
        inventory_markdown(inventory),
        "",
        "## 2. Retention policies",
        "",
        "| family | kept |",
        "|---|---|",
        *(f"| {p.family} | {retention_text(p.days)} |" for p in audit.policies),
        "",
        f"## 3. Audit: {'PASS' if audit.ok else 'FAIL'}",
        "",
        "| stored series | oldest point |",
        "|---|---|",
        *(f"| `{name}` | {_when(ms)} |" for name, ms in audit.series_checked.items()),
        "",
    ]
    if audit.ok:
        out.append("No finding: every stored point is within policy and in the schema.")
    else:
        out += ["| check | series | finding |", "|---|---|---|"]
        out += [f"| {f.check} | `{f.series}` | {f.detail} |" for f in audit.findings]
    files = [row for row in inventory.rows if row.kind == FILE_KIND]
    out += [
        "",
        "### Local files: retention and deletions",
        "",
        "| holding | personal data? | kept |",
        "|---|---|---|",
        *(f"| {row.what} | {row.personal_data} | {row.retention} |" for row in files),
        "",
    ]
    if audit.deletions:
        out += ["| holding | deleted at | what |", "|---|---|---|"]
        out += [f"| {d.holding} | {_when(d.when_ms)} | {d.detail} |" for d in audit.deletions]
    else:
        out.append("No deletion recorded yet.")
    out += [
        "",
        "## 4. Anonymised releases and privacy budget",
        "",
        f"k = {inventory.k} rooms per released cell; epsilon {inventory.epsilon_per_release:g}"
        f" per release; noise: discrete Laplace (OpenDP) drawn from {rng}.",
        "",
        "| recipient | epsilon spent | limit | remaining | releases |",
        "|---|---|---|---|---|",
        *(
            f"| {b.recipient} | {b.spent:.4g} | {b.limit:g} | {b.remaining:.4g} | {b.releases} |"
            for b in budgets
        ),
        "",
    ]
    if charges:
        out += ["| release | recipient | epsilon | when | what |", "|---|---|---|---|---|"]
        out += [
            f"| {c.release_id[:12]} | {c.recipient} | {c.epsilon:.4g} | {_when(c.created_ms)}"
            f" | {c.note} |"
            for c in charges
        ]
    else:
        out.append("No release yet.")
    return "\n".join(out) + "\n"
