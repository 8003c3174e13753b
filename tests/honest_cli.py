"""Run the ``softplace`` program in-process, as ``main()`` does (errors on one line, exit
codes through), with settings from a private environment."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from softplace.cli import run
from softplace_cli import cli


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("SOFTPLACE_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        for name in values:
            os.environ.pop(name, None)
        os.environ.update(saved)


def softplace(
    capsys: pytest.CaptureFixture[str], env: Mapping[str, str], *args: str
) -> Outcome:
    capsys.readouterr()
    with _environ(env), pytest.raises(SystemExit) as exited:
        run(cli, list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return Outcome(code if isinstance(code, int) else 1, captured.out, captured.err)


def store_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SOFTPLACE_STORAGE__SQLITE_PATH": str(tmp_path / "store.sqlite"),
            "SOFTPLACE_DETECTOR__CHECKPOINT_PATH": str(tmp_path / "cp.json"), **extra}
