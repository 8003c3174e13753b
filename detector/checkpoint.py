"""The service's checkpoint: one small JSON file, replaced atomically.

Written after the step's results are in the store, so a crash between the two replays
the step (writes are idempotent) and never skips one. Per site it holds the detector's
state (``SiteDetector.to_dict``) and, under ``booked``, the booking signature of each
recent room-day with a breach (``detector/service.py``); a checkpoint without it loads
as having none.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from softplace.errors import SoftPlaceError

VERSION = 1


class CheckpointError(SoftPlaceError):
    """The checkpoint file exists but cannot be used."""


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The saved per-site state, or None when there is no checkpoint yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {err.strerror}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not a detector checkpoint ({err}); move it away") from err
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')!r}, "
                              f"expected {VERSION}; move it away to start afresh")
    sites = data.get("sites")
    return sites if isinstance(sites, dict) else {}


def save_checkpoint(path: Path, sites: dict[str, Any]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"version": VERSION, "sites": sites}, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
