"""``warmline staffing``: agents needed by Erlang C; ``warmline workforce payroll``: the hours export."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.db import utcnow
from core.i18n import _
from hotline.config import load_config
from workforce.erlang import Demand, required
from workforce.forecast import forecast, parse_week
from workforce.payroll import Period, export, payroll, rules_from
from workforce.reports import report, to_csv

staffing_app = typer.Typer(help="Staffing: agents needed per interval by Erlang C.", no_args_is_help=True)


@staffing_app.command("erlang")
def staffing_erlang(
    calls: Annotated[float, typer.Option("--calls", help="Calls offered in the interval.")],
    aht: Annotated[float, typer.Option("--aht", help="Average handle time, seconds.")],
    answer_within: Annotated[float, typer.Option("--answer-within", help="Target answer time, seconds.")],
    level: Annotated[float, typer.Option("--level", help="Share to answer in time: 0.8 or 80.")],
    interval_min: Annotated[float, typer.Option("--interval-min", help="Interval length, minutes.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """The fewest agents that answer LEVEL of CALLS within ANSWER-WITHIN seconds (Erlang C)."""
    share = level / 100 if level > 1 else level
    problems = [
        _("--calls {value}: not negative", value=calls) if calls < 0 else "",
        _("--aht {value}: more than 0 seconds", value=aht) if aht <= 0 else "",
        _("--interval-min {value}: more than 0 minutes", value=interval_min) if interval_min <= 0 else "",
        _("--answer-within {value}: not negative", value=answer_within) if answer_within < 0 else "",
        _("--level {value}: between 0 and 1 (or 0 and 100 per cent)", value=level)
        if not 0 < share < 1
        else "",
    ]
    if wrong := [p for p in problems if p]:
        raise fail(_("Expected {items}.", items="; ".join(wrong)))
    result = required(Demand(calls, interval_min * 60, aht, answer_within, share))
    data = result.as_dict()
    text = _(
        "{agents} agents: {level:.1%} answered within {within:g} s, occupancy {occupancy:.1%}, "
        "average answer {asa:.1f} s",
        agents=result.agents,
        level=result.service_level,
        within=answer_within,
        occupancy=result.occupancy,
        asa=result.asa_s,
    )
    emit(data, as_json, text)


workforce_app = typer.Typer(
    help="Agents' hours the law counts, and the payroll export.", no_args_is_help=True
)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise fail(_("{option} {value}: write a date as YYYY-MM-DD", option=option, value=text)) from exc


@workforce_app.command("payroll")
def workforce_payroll(
    ctx: typer.Context,
    first: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (local).")],
    last: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (local), included.")],
    output: Annotated[Path, typer.Option("--output", help="The file to write.")],
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
    as_json: JsonOpt = False,
) -> None:
    """Write per agent: shifts, calls, talk, worked, normal, night and overtime hours (audited)."""
    period = Period(_day(first, "--from"), _day(last, "--to"))
    if period.last < period.first:
        raise fail(_("--to {last} is before --from {first}", last=last, first=first))
    if fmt not in ("csv", "xlsx"):
        raise fail(_("--format {value}: csv or xlsx", value=fmt))
    cli = cli_context(ctx)
    try:
        rules = rules_from(cli.settings)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with cli.database().session() as session:
        rows = payroll(session, period, rules, now=utcnow(), agent=agent)
        output.write_bytes(export(session, CLI_ACTOR, rows, period, "xlsx" if fmt == "xlsx" else "csv"))
    summary = {"output": str(output), "format": fmt, "agents": len(rows)}
    emit(summary, as_json, _("{count} agents written to {output}", count=len(rows), output=output))


@staffing_app.command("forecast")
def staffing_forecast(
    ctx: typer.Context,
    line: Annotated[str, typer.Option("--line", help="The inbound line, by name or number.")],
    week: Annotated[str, typer.Option("--week", help="The ISO week to staff, e.g. 2026-W50.")],
    history_weeks: Annotated[int, typer.Option("--history-weeks", min=1, max=52)] = 4,
    as_json: JsonOpt = False,
) -> None:
    """Required agents per half hour of WEEK on LINE, from the same half hours of past weeks."""
    cli = cli_context(ctx)
    try:
        monday = parse_week(week)
        config = load_config(cli.settings.inbound_config)
        with cli.database().session() as session:
            data = forecast(session, config, line, monday, history_weeks)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    text = [
        _(
            "{line}, week {week}: {count} half hours with calls",
            line=data["line"],
            week=data["week"],
            count=len(data["slots"]),
        )
    ]
    for slot in data["slots"]:
        text.append(
            _(
                "{start}: {calls} calls, {aht} s each, {agents} agents",
                start=slot["start"],
                calls=slot["calls"],
                aht=slot["aht_s"],
                agents=slot["agents"],
            )
        )
    emit(data, as_json, "\n".join(text))


def _percent(share: float | None) -> str:
    return "—" if share is None else format(share, ".0%")


@workforce_app.command("report")
def workforce_report(
    ctx: typer.Context,
    first: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (local).")],
    last: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (local), included.")],
    by: Annotated[str, typer.Option("--by", help="day or week.")] = "day",
    group: Annotated[str, typer.Option("--group", help="line, team or agent.")] = "line",
    output: Annotated[Path | None, typer.Option("--output", help="Write CSV here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Service level, answer time, abandon, handle time, resolution, satisfaction and hours."""
    if by not in ("day", "week"):
        raise fail(_("--by {value}: day or week", value=by))
    if group not in ("line", "team", "agent"):
        raise fail(_("--group {value}: line, team or agent", value=group))
    cli = cli_context(ctx)
    try:
        rules = rules_from(cli.settings)
        config = load_config(cli.settings.inbound_config)
        with cli.database().session() as session:
            data = report(
                session, config, _day(first, "--from"), _day(last, "--to"),
                by=by, group=group, rules=rules, now=utcnow(),  # type: ignore[arg-type]
            )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if output is not None:
        output.write_bytes(to_csv(data))
    text = [_("{count} rows", count=len(data["rows"]))]
    for row in data["rows"]:
        text.append(
            _(
                "{name} {period}: {answered}/{offered} answered, service level {sl}, resolution {res}, "
                "satisfaction {sat}",
                name=row["name"],
                period=row["period"],
                answered=row["answered"],
                offered=row["offered"],
                sl=_percent(row["service_level"]),
                res=_percent(row["resolution"]),
                sat="—" if row["satisfaction"] is None else row["satisfaction"],
            )
        )
    emit(data, as_json, "\n".join(text))
