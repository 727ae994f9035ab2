"""``warmline staffing``: agents needed by Erlang C for an interval's calls."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli import JsonOpt, emit, fail
from core.i18n import _
from workforce.erlang import Demand, required

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
