"""`warmline qa ...`: QA sampling, calibration and averages from the command line.

warmline qa sample --period 2026-W48 [--seed N] [--rate R] [--min-per-agent N] [--max-per-agent N] [--json]
warmline qa agreement [--period 2026-W48] [--json]
warmline qa averages [--period 2026-W48] [--json]
warmline qa scorecard NAME|FILE [--json]

Registered by `recordings.plugin`; the database comes from the root command's `core.cli.CliContext`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.i18n import _

qa_app = typer.Typer(help="QA: fair samples of recordings, scorecards, calibration.", no_args_is_help=True)
PeriodOpt = Annotated[
    str | None, typer.Option("--period", help="An ISO week (2026-W48), a date, or FROM..TO dates.")
]


@qa_app.command("sample")
def sample(
    ctx: typer.Context,
    period: Annotated[
        str, typer.Option("--period", help="An ISO week (2026-W48), a date, or FROM..TO dates.")
    ],
    seed: Annotated[
        int | None, typer.Option("--seed", help="Reproduces a draw; default: fixed per period.")
    ] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="Share of each agent × campaign.")] = None,
    min_per_agent: Annotated[int | None, typer.Option("--min-per-agent", help="At least this many.")] = None,
    max_per_agent: Annotated[int | None, typer.Option("--max-per-agent", help="At most this many.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw the period's random sample per agent × campaign, and the targeted queue, with reasons."""
    from pydantic import ValidationError

    from recordings.qa import service
    from recordings.qa.sampling import SamplingError, SamplingParams

    config = service.load_config()
    overrides = {
        k: v
        for k, v in {"rate": rate, "min_per_agent": min_per_agent, "max_per_agent": max_per_agent}.items()
        if v is not None
    }
    try:
        params = SamplingParams.model_validate({**config.random.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise fail(problems) from exc
    cli = cli_context(ctx)
    with cli.database().session() as session:
        try:
            result = service.draw_sample(
                session,
                cli.settings,
                period,
                seed=seed,
                params=params,
                rules=config.targeted,
                actor=CLI_ACTOR,
            )
        except SamplingError as exc:
            raise fail(str(exc)) from exc
        data = result.to_dict()
    emit(data, as_json, service.sample_text(data))


@qa_app.command("agreement")
def agreement(ctx: typer.Context, period: PeriodOpt = None, as_json: JsonOpt = False) -> None:
    """Agreement of blind double scoring: percent agreement per item and overall, Cohen's kappa."""
    from recordings.qa import reviews

    with cli_context(ctx).database().session() as session:
        data = reviews.agreement(session, period)
    if not data["calls"]:
        emit(data, as_json, _("no call has been scored twice yet"))
        return
    kappa = data["kappa_yes_no"]
    lines = [
        _(
            "{n} calls scored twice: {agree} of answers agree; Cohen's kappa (yes/no items) {kappa};"
            " mean score gap {gap}",
            n=data["calls"],
            agree=format(data["agreement"], ".0%"),
            kappa=_("n/a") if kappa is None else format(kappa, ".2f"),
            gap=data["mean_score_gap"],
        )
    ]
    for it in data["items"]:
        k = "" if it["kappa"] is None else _(", kappa {kappa}", kappa=format(it["kappa"], ".2f"))
        lines.append(
            f"  {it['item']}: " + _("{agree} of {n}", agree=format(it["agreement"], ".0%"), n=it["n"]) + k
        )
    emit(data, as_json, "\n".join(lines))


@qa_app.command("averages")
def averages(ctx: typer.Context, period: PeriodOpt = None, as_json: JsonOpt = False) -> None:
    """Mean review scores per agent: the random sample's and the targeted queue's apart."""
    from recordings.qa import reviews

    with cli_context(ctx).database().session() as session:
        data = reviews.averages(session, period)

    def fmt(x: dict[str, float] | None) -> str:
        return "-" if x is None else f"{x['mean_score']:.1f} ({int(x['reviews'])})"

    agent, random_sample, targeted = _("agent"), _("random sample"), _("targeted (apart)")
    lines = [f"{agent:<16} {random_sample:>16} {targeted:>18}"]
    lines += [
        f"{r['agent'] or '-':<16} {fmt(r['random']):>16} {fmt(r['targeted']):>18}" for r in data["agents"]
    ]
    emit(data, as_json, "\n".join(lines) if data["agents"] else _("no completed reviews yet"))


@qa_app.command("scorecard")
def scorecard(
    name: Annotated[str, typer.Argument(help="A scorecard's name in config/qa, or a YAML file.")],
    as_json: JsonOpt = False,
) -> None:
    """Check and show a scorecard: sections, weights, items, auto-fail items."""
    from recordings.qa import scorecards

    try:
        path = Path(name)
        card = (
            scorecards.parse(path.read_text(encoding="utf-8"), str(path))
            if path.suffix in {".yaml", ".yml"}
            else scorecards.load(name)
        )
    except (scorecards.ScorecardError, OSError) as exc:
        raise fail(str(exc)) from exc
    say = scorecards.say
    lines = [
        _(
            "{title} ({name} v{version}), pass mark {mark}",
            title=say(card.title),
            name=card.name,
            version=card.version,
            mark=format(card.pass_mark, "g"),
        )
    ]
    for s in card.sections:
        lines.append("  " + _("{title} (weight {weight})", title=say(s.title), weight=format(s.weight, "g")))
        for i in s.items:
            kind = _("yes/no") if i.type.value == "yes_no" else f"0-{i.max}"
            flag = _(", AUTO-FAIL") if i.auto_fail else ""
            weight = _("weight {weight}", weight=format(i.weight, "g"))
            lines.append(f"    {i.key}: {say(i.text)} [{kind}, {weight}{flag}]")
    emit(card.model_dump(mode="json"), as_json, "\n".join(lines))
