"""`warmline cases list [--open] [--json]` and `warmline cases close ID [--note TEXT]` (audited)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.db import utcnow
from core.i18n import _
from hotline.cases import CaseError, case_text, close_case, list_cases
from hotline.cases_api import described

cases_app = typer.Typer(help="Case records (工单) of the hotline: listed until closed.", no_args_is_help=True)


@cases_app.command("list")
def cases_list(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only cases not yet closed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List cases, the open ones first by follow-up date (numbers in summaries masked)."""
    cli = cli_context(ctx)
    today = utcnow().astimezone(ZoneInfo(cli.settings.timezone)).date()
    with cli.database().session() as session:
        rows = described(cli.settings, list_cases(session, open_only=open_only), today)
    text = "\n".join(case_text(r) for r in rows) or (_("no open cases") if open_only else _("no cases yet"))
    emit(rows, as_json, text)


@cases_app.command("close")
def cases_close(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The case's number.")],
    note: Annotated[str | None, typer.Option("--note", help="How it was settled.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a case (written to the audit log)."""
    cli = cli_context(ctx)
    today = utcnow().astimezone(ZoneInfo(cli.settings.timezone)).date()
    try:
        with cli.database().session() as session:
            case = close_case(session, case_id, actor=CLI_ACTOR, now=utcnow(), note=note)
            row = described(cli.settings, [case], today)[0]
    except CaseError as exc:
        raise fail(str(exc)) from exc
    emit(row, as_json, _("case {id} closed", id=case_id))
