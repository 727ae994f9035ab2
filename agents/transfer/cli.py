"""`warmline transfers ...`: the transfers agents made, for supervisors and for checking a call.

warmline transfers list [--call CALL_REF] [--agent NAME] [--limit 50] [--json]

One object per transfer, newest first: ``id``, ``call_ref``, ``from_agent``, ``to_agent``,
``kind``, ``mode``, ``target`` (an outside number masked), ``state``, ``result`` and the times.
Registered by ``agents.transfer.plugin``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import or_, select

from agents.transfer.models import Transfer
from agents.transfer.service import public
from core.cli import JsonOpt, cli_context, emit
from core.i18n import _

transfers_app = typer.Typer(help="Transfers and consults agents made.", no_args_is_help=True)


@transfers_app.command("list")
def transfers_list(
    ctx: typer.Context,
    call: Annotated[str | None, typer.Option("--call", help="Only this call's (its call_ref).")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only those this agent made or took.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The latest transfers, newest first."""
    stmt = select(Transfer).order_by(Transfer.requested_at.desc()).limit(limit)
    if call:
        stmt = stmt.where(Transfer.call_ref == call)
    if agent:
        stmt = stmt.where(or_(Transfer.from_agent == agent, Transfer.to_agent == agent))
    with cli_context(ctx).database().session() as session:
        rows = [public(row) for row in session.scalars(stmt)]
    for row in rows:
        row.pop("wrap_up_by", None)
    lines = [
        _(
            "{at}  {who} → {target} ({kind}, {mode}): {state}{result}",
            at=(row["requested_at"] or "")[:19].replace("T", " "),
            who=row["from_agent"],
            target=row["to_agent"] or row["target"],
            kind=row["kind"],
            mode=row["mode"],
            state=row["state"],
            result=" (" + str(row["result"]) + ")" if row["result"] else "",
        )
        for row in rows
    ]
    emit(rows, as_json, "\n".join(lines) or _("No transfers."))
