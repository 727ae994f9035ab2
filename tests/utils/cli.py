"""Running `warmline` commands in a test: one process, its settings from the environment."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.testing
from typer.testing import Result

from core.settings import get_settings
from warmline.cli import app


@cache
def _command(app: typer.Typer) -> Any:
    return typer.main.get_command(app)


class CliRunner(typer.testing.CliRunner):
    """Typer's test runner, but each app's command tree is built once per process: typer builds
    it again on every `invoke` (every command's signature read again), ~130 ms on an idle machine
    and half a second on a loaded one, for hundreds of commands in the suite."""

    def invoke(
        self,
        app: typer.Typer,
        args: str | Sequence[str] | None = None,
        input: bytes | str | None = None,
        env: Mapping[str, str | None] | None = None,
        catch_exceptions: bool = True,
        color: bool = False,
        **extra: Any,
    ) -> Result:
        command = _command(app)
        argv = shlex.split(args) if isinstance(args, str) else list(args or ())
        exception: BaseException | None = None
        exc_info: Any = None
        code = 0
        with self.isolation(input=input, env=env, color=color) as (stdout, stderr, output):
            try:
                command.main(args=argv, prog_name=self.get_default_prog_name(command), **extra)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if exit_.code is not None and not isinstance(exit_.code, int):
                    sys.stdout.write(f"{exit_.code}\n")
                if code != 0:
                    exception, exc_info = exit_, sys.exc_info()
            except Exception as error:
                if not catch_exceptions:
                    raise
                exception, exc_info, code = error, sys.exc_info(), 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            out, err, both = stdout.getvalue(), stderr.getvalue(), output.getvalue()
        return Result(self, out, err, both, None, code, exception, exc_info)


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
