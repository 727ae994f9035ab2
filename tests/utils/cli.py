"""Running `warmline` commands in a test: one process, its settings from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.settings import get_settings
from warmline.cli import app


@contextmanager
def cli_runner(
    monkeypatch: pytest.MonkeyPatch, var_dir: Path, db_url: str, **env: str
) -> Iterator[CliRunner]:
    """A runner whose commands see `var_dir`, `db_url` and `env` (WARMLINE_* names), from var_dir's parent.

    Settings are read afresh on the first command and forgotten afterwards, as in a new process.
    """
    monkeypatch.setenv("WARMLINE_VAR_DIR", str(var_dir))
    monkeypatch.setenv("WARMLINE_DATABASE_URL", db_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(var_dir.parent)
    get_settings.cache_clear()
    try:
        yield CliRunner()
    finally:
        get_settings.cache_clear()


def ok(runner: CliRunner, *args: str) -> Result:
    """Run `warmline ARGS`; fail the test with its output unless it exits 0."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    """Run `warmline ARGS`, expect exit `code`, return its stdout."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout
