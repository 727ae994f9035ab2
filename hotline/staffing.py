"""Can anyone take the calls each inbound line puts through to agents?

A line needs agents where its menu (and after-hours) flow transfers: each ``transfer`` node's
skill, on this line (agents who list lines serve only theirs), in the node's or the line's
language. The lines start answering when the service starts, so the service checks them then
and logs a warning per need nobody can meet (:func:`log_unstaffed`, a worker of ``warmline up``);
``warmline hotline check`` asks on demand.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import typer
from sqlalchemy.orm import Session

from agents.routing import ANY_SKILL, Need, unmet
from core.cli import JsonOpt, cli_context, emit
from core.features import ServiceContext
from core.i18n import _
from core.settings import Settings
from hotline.config import InboundNumber, load_config
from ivr.check import find_flow, load_flow
from ivr.flow import TransferNode

log = logging.getLogger(__name__)


def line_needs(settings: Settings, number: str, line: InboundNumber) -> tuple[list[Need], list[str]]:
    """What the line's flows ask of agents, and the problems met reading them."""
    needs: list[Need] = []
    problems: list[str] = []
    names = line.line_names(number)
    for flow_name in dict.fromkeys(f for f in (line.flow, line.after_hours_flow) if f):
        path = find_flow(settings.var_dir, flow_name)
        if path is None:
            problems.append(f"line {line.name!r} ({number}): its flow {flow_name!r} is not found")
            continue
        try:
            flow = load_flow(path)
        except Exception as exc:
            problems.append(
                _(
                    "line “{line}” ({number}): its flow {path} cannot be read: {error}",
                    line=line.name,
                    number=number,
                    path=path,
                    error=exc,
                )
            )
            continue
        for node in flow.nodes.values():
            if isinstance(node, TransferNode):
                skill = None if node.skill == ANY_SKILL else node.skill
                needs.append(Need(skill, names, node.language or line.language, line.min_level))
    return list(dict.fromkeys(needs)), problems


def check_lines(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Per configured line: its number, name, needs and the warnings (empty: fully staffed)."""
    config = load_config(settings.inbound_config)
    out: list[dict[str, Any]] = []
    for number, line in config.numbers.items():
        needs, problems = line_needs(settings, number, line)
        gaps = unmet(session, needs)
        warnings = problems + [
            _(
                "line “{line}” ({number}) puts callers through to {need}, but {reason}: "
                "they would wait until the queue gives up on them",
                line=line.name,
                number=number,
                need=g.need,
                reason=g.reason,
            )
            for g in gaps
        ]
        out.append(
            {
                "number": number,
                "name": line.name,
                "needs": [str(n) for n in needs],
                "missing_skills": list(
                    dict.fromkeys(g.need.skill for g in gaps if g.need.skill and g.missing == "skill")
                ),
                "warnings": warnings,
            }
        )
    return out


async def log_unstaffed(ctx: ServiceContext) -> None:
    """At service start: a warning for each need of an inbound line that nobody can meet."""

    def check() -> list[dict[str, Any]]:
        with ctx.db.session() as session:
            return check_lines(session, ctx.settings)

    try:
        lines = await asyncio.to_thread(check)
    except Exception as exc:  # a bad inbound file is the hotline's to report when a call comes
        log.warning("%s", _("could not check the inbound lines' agents: {error}", error=exc))
        return
    for line in lines:
        for warning in line["warnings"]:
            log.warning("%s", warning)


hotline_app = typer.Typer(help="The inbound hotline's lines.", no_args_is_help=True)


@hotline_app.command("check")
def hotline_check(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Say, per inbound line, which of the agent calls its flows make nobody can take (exit 1 if any)."""
    cli = cli_context(ctx)
    with cli.database().session() as session:
        lines = check_lines(session, cli.settings)
    text = []
    for line in lines:
        state = _("no agent for some calls") if line["warnings"] else _("staffed")
        text.append(f"{line['number']} {line['name']}: {state}")
        text.extend("  " + _("warning: {text}", text=w) for w in line["warnings"])
    emit(lines, as_json, "\n".join(text) or _("no inbound lines in {path}", path=cli.settings.inbound_config))
    if any(line["warnings"] for line in lines):
        raise typer.Exit(1)
