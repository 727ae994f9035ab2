"""What every ``warmline`` command group shares: errors, output, the actor name, and the context the
root command hands down.

Messages for people are in the command line's language (``WARMLINE_LANG``, else ``LANG``; see
:func:`core.i18n.cli_locale`), set once by the root command; ``--json`` output is for programs and
keeps its codes. The root command (``warmline.cli``) owns the migrations, so it alone knows how to open the database
at the current schema. Its callback puts a :class:`CliContext` into Typer's ``ctx.obj``; a feature's
command takes Typer's context (a ``ctx: typer.Context`` parameter, which is no option on the command
line) and reads it with :func:`cli_context` (``cli_context(ctx).database()``); it never imports the
root.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.features import ServiceContext
from core.i18n import _

if TYPE_CHECKING:
    from core.bus import Bus
    from core.db import Database
    from core.features import StasisHandler, Worker
    from core.settings import Settings

CLI_ACTOR = "cli"
"""Who the audit log says acted, for a change made on the command line."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def warn(message: str) -> None:
    """A warning on stderr, in the command line's language (the caller translated `message`)."""
    typer.secho(_("warning: {warning}", warning=message), err=True, fg=typer.colors.YELLOW)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Say what went wrong on stderr; the caller raises the returned Exit (``raise fail(...)``)."""
    typer.secho(_("error: {message}", message=message), err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def emit(data: Any, as_json: bool, text: str) -> None:
    """One JSON document (``--json``, for scripts) or the text a person reads."""
    typer.echo(json.dumps(data, ensure_ascii=False, default=str) if as_json else text)


@dataclass
class CliContext:
    """What the root command hands every command under it (Typer's ``ctx.obj``).

    Settings are read and the database opened only when a command asks (the softphone, run on an
    agent's PC, needs neither); each is made once per command line.
    """

    load_settings: Callable[[], Settings]
    open_database: Callable[[Settings], Database]
    """The database at the current schema: the root migrates before it hands it out."""
    stasis: Mapping[str, StasisHandler] = field(default_factory=dict)
    """The Stasis handlers the features registered, for a worker started from the command line."""
    workers: Mapping[str, Worker] = field(default_factory=dict)
    """The workers the features registered, by name, for a command that runs some of them."""
    _settings: Settings | None = field(default=None, init=False, repr=False)
    _database: Database | None = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.load_settings()
        return self._settings

    def database(self) -> Database:
        if self._database is None:
            self._database = self.open_database(self.settings)
        return self._database

    def service(self, bus: Bus | None) -> ServiceContext:
        """What a background worker run from this command is given."""
        return ServiceContext(self.settings, self.database(), bus, stasis=self.stasis)


def cli_context(ctx: typer.Context) -> CliContext:
    """The CliContext the root command put into ``ctx`` (or into a parent of it)."""
    found = ctx.find_object(CliContext)
    if found is None:
        raise RuntimeError(_("run this command under `warmline` (its root command provides the context)"))
    return found
