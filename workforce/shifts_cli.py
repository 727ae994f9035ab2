"""``warmline shifts show|pick|drop|publish``: the hourly rota of a line's week on the command line."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.db import utcnow
from core.i18n import _
from hotline.config import InboundConfigError, load_config
from workforce.forecast import parse_week
from workforce.shifts import Rota, ShiftError, drop, monday_of, pick, publish, rota

shifts_app = typer.Typer(
    help="Shifts: agents pick open hours, managers see the gaps and publish the week.", no_args_is_help=True
)
LineOpt = Annotated[str, typer.Option("--line", help="The inbound line, by name or number.")]
StartOpt = Annotated[str, typer.Option("--start", help="The hour's start, local: 2026-12-14T09:00.")]
AgentOpt = Annotated[str, typer.Option("--agent", help="The agent's login name.")]


def _config(ctx: typer.Context) -> Any:
    try:
        return load_config(cli_context(ctx).settings.inbound_config)
    except InboundConfigError as exc:
        raise fail(str(exc)) from exc


def _text(found: Rota) -> str:
    head = _(
        "{line}, week {week}: {picked} of {needed} agent-hours picked, {gaps} open",
        line=found.line,
        week=found.week,
        picked=sum(len(h.agents) for h in found.hours),
        needed=sum(h.needed for h in found.hours),
        gaps=sum(h.open for h in found.hours),
    )
    if found.published_at is not None:
        head += "\n" + _("published by {who}", who=found.published_by)
    rows = [
        _(
            "{start}: needs {needed}, picked by {agents}, {open} open",
            start=h.start.strftime("%a %Y-%m-%d %H:%M"),
            needed=h.needed,
            agents=", ".join(h.agents) or "—",
            open=h.open,
        )
        for h in found.hours
    ]
    return "\n".join([head, *rows])


@shifts_app.command("show")
def shifts_show(
    ctx: typer.Context,
    line: LineOpt,
    week: Annotated[
        str | None, typer.Option("--week", help="ISO week, e.g. 2026-W50; default: this week.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The line's week by the hour: needed (forecast), who picked it, what is open."""
    config = _config(ctx)
    cli = cli_context(ctx)
    try:
        monday = (
            parse_week(week) if week else monday_of(utcnow().astimezone(ZoneInfo(config.timezone)).date())
        )
        with cli.database().session() as session:
            found = rota(session, config, line, monday)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    emit(found.as_dict(), as_json, _text(found))


@shifts_app.command("pick")
def shifts_pick(
    ctx: typer.Context, line: LineOpt, agent: AgentOpt, start: StartOpt, as_json: JsonOpt = False
) -> None:
    """Give AGENT the open hour from START on LINE (audited)."""
    config = _config(ctx)
    try:
        with cli_context(ctx).database().session() as session:
            hour = pick(session, config, line, agent, start, actor=CLI_ACTOR, now=utcnow())
            data = {"agent": agent, "line": line, **hour.as_dict()}
    except ShiftError as exc:
        raise fail(str(exc)) from exc
    emit(data, as_json, _("{agent} works {line} from {start}", agent=agent, line=line, start=data["start"]))


@shifts_app.command("drop")
def shifts_drop(
    ctx: typer.Context, line: LineOpt, agent: AgentOpt, start: StartOpt, as_json: JsonOpt = False
) -> None:
    """Take the hour from START on LINE back from AGENT (audited; allowed after publishing)."""
    config = _config(ctx)
    try:
        with cli_context(ctx).database().session() as session:
            drop(session, config, line, agent, start, actor=CLI_ACTOR, now=utcnow(), supervisor=True)
    except ShiftError as exc:
        raise fail(str(exc)) from exc
    data = {"agent": agent, "line": line, "start": start, "dropped": True}
    emit(data, as_json, _("{agent} no longer works {line} from {start}", agent=agent, line=line, start=start))


@shifts_app.command("publish")
def shifts_publish(
    ctx: typer.Context,
    line: LineOpt,
    week: Annotated[str, typer.Option("--week", help="ISO week, e.g. 2026-W50.")],
    as_json: JsonOpt = False,
) -> None:
    """Publish the line's week: the rota is final; the gaps are listed."""
    config = _config(ctx)
    try:
        monday = parse_week(week)
        with cli_context(ctx).database().session() as session:
            found = publish(session, config, line, monday, actor=CLI_ACTOR, now=utcnow())
    except ValueError as exc:
        raise fail(str(exc)) from exc
    emit(found.as_dict(), as_json, _text(found))
