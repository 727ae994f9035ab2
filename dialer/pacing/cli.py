"""`warmline pacing simulate`: one simulated shift with a pacing policy, its figures printed.

warmline pacing simulate --policy progressive|adapt|predictive --agents N --answer-rate P
    [--answer-rate-end P2] --talk-mean S [--talk-cv C] --wrap S --hours H --seed K [--days D] [--json]

`--days D`: D consecutive days, a shift of H hours from 09:00 each, the same pacer and abandon
window going on from one day to the next; the JSON adds `days`, each day's figures.

The group is registered by `dialer.plugin`. The pacer simulated is the production class the
engine uses; the traffic model and its sources are in docs/pacing.md.
"""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli import JsonOpt, emit
from core.i18n import N_, _
from dialer.pacing.model import Policy
from dialer.pacing.simulator import Result, Simulation, Staffing, Traffic, simulate
from dialer.pacing.simulator.run import MAX_SHIFT_H

pacing_app = typer.Typer(help="Pacing: simulate how a policy dials for agents.", no_args_is_help=True)

POLICY_NAMES = {
    Policy.progressive: N_("progressive"),
    Policy.adapt: N_("VICIdial ADAPT_TAPERED"),
    Policy.predictive: N_("predictive"),
}


@pacing_app.command("simulate")
def simulate_command(
    policy: Annotated[Policy, typer.Option("--policy", help="The pacing policy.")],
    agents: Annotated[int, typer.Option("--agents", min=1, help="Agents on the shift.")],
    answer_rate: Annotated[
        float, typer.Option("--answer-rate", min=0.0, max=1.0, help="Share of dials a person answers.")
    ],
    talk_mean: Annotated[float, typer.Option("--talk-mean", min=1.0, help="Mean talk time, seconds.")],
    wrap: Annotated[float, typer.Option("--wrap", min=0.0, help="Mean wrap-up time, seconds.")],
    hours: Annotated[float, typer.Option("--hours", min=0.01, max=24 * 30, help="Length of the shift.")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Same seed, same callees and agents.")],
    answer_rate_end: Annotated[
        float | None,
        typer.Option(
            "--answer-rate-end",
            min=0.0,
            max=1.0,
            help="The answer rate drifts to this between a third and two thirds of the shift.",
        ),
    ] = None,
    talk_cv: Annotated[
        float, typer.Option("--talk-cv", min=0.0, help="Talk time's coefficient of variation (lognormal).")
    ] = 1.0,
    days: Annotated[
        int,
        typer.Option(
            "--days",
            min=1,
            max=60,
            help="Consecutive days, a shift each; the abandon window carries over from day to day.",
        ),
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Simulate one shift of an agent campaign and print occupancy, abandon rate and agent wait."""
    if days > 1 and hours > MAX_SHIFT_H:
        raise typer.BadParameter(
            _("with several days, a shift lasts at most {hours} hours", hours=format(MAX_SHIFT_H, "g")),
            param_hint="--hours",
        )
    traffic = Traffic(
        answer_rate=answer_rate,
        answer_rate_end=answer_rate_end,
        hours=hours,
        talk_mean_s=talk_mean,
        talk_cv=talk_cv,
        wrap_mean_s=wrap,
    )
    result = simulate(Simulation(policy, traffic, Staffing(agents=agents), seed=seed, days=days))
    emit(result.as_json(), as_json, describe(policy, agents, hours, seed, result))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def describe(policy: Policy, agents: int, hours: float, seed: int, r: Result) -> str:
    lines = [
        _(
            "Simulated: {policy}, {agents} agents, {hours} h, seed {seed}",
            policy=_(POLICY_NAMES[policy]),
            agents=agents,
            hours=format(hours, "g"),
            seed=seed,
        ),
        _("Occupancy (talk and wrap-up over time logged in): {value}", value=_pct(r.occupancy)),
        _(
            "Abandoned: {rate} of live answers (worst window {worst})",
            rate=_pct(r.abandon_rate),
            worst=_pct(r.worst_window_abandon),
        ),
        _(
            "Dials {dials}, live answers {live}, abandoned {abandoned}",
            dials=r.dials,
            live=r.live_answers,
            abandoned=r.abandoned,
        ),
        _("Agents waited {seconds} s on average between calls", seconds=format(r.agent_wait_s, ".1f")),
    ]
    for number, day in enumerate(r.days, 1):
        lines.append(
            _(
                "Day {day}: occupancy {occupancy} (first hour {first_hour}), abandoned {rate}"
                " (worst window {worst}); the window held {carried} live answers as the shift began",
                day=number,
                occupancy=_pct(day.occupancy),
                first_hour=_pct(day.first_hour_occupancy),
                rate=_pct(day.abandon_rate),
                worst=_pct(day.worst_window_abandon),
                carried=int(day.window_at_start["live_answers"]),
            )
        )
    return "\n".join(lines)
