"""`warmline practice ...`: practice calls on the command line.

warmline practice scenarios [--json]
warmline practice start --agent NAME --scenario NAME [--json]   # rings the agent's own phone
warmline practice list [--agent NAME] [--json]
warmline practice review ID [--json]                            # into the QA queue for scoring

``start`` originates through ARI from this process; the scenario is played by the service that
follows the node's events (``warmline up``), which must be running. Audited with the actor ``cli``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import typer

from core.ari import AriClient
from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.db import utcnow
from core.i18n import _
from recordings.qa.practice import put_up_practice
from recordings.qa.reviews import ReviewError
from workforce.practice import service
from workforce.practice.service import PracticeError

practice_app = typer.Typer(
    help="Practice calls: a simulated caller rung to an agent's own phone, recorded.", no_args_is_help=True
)


@practice_app.command("scenarios")
def practice_scenarios(as_json: JsonOpt = False) -> None:
    """The practice scenarios (config/practice/)."""
    rows = service.scenario_list()
    text = "\n".join(f"{r['name']:<24} {r['title']} ({r['steps']})  {r['description']}" for r in rows)
    emit(rows, as_json, text)


async def _start(ctx: typer.Context, agent: str, scenario: str) -> service.Started:
    cli = cli_context(ctx)
    settings = cli.settings
    aris = [
        AriClient(node.ari_url, node.ari_user, settings.node_ari_password(node), node.app)
        for node in settings.asterisk_nodes
    ]
    try:
        return await service.start(cli.database(), settings, aris, agent, scenario, actor=CLI_ACTOR)
    finally:
        for ari in aris:
            with contextlib.suppress(Exception):
                await ari.aclose()


@practice_app.command("start")
def practice_start(
    ctx: typer.Context,
    agent: Annotated[str, typer.Option("--agent", help="The agent whose phone rings.")],
    scenario: Annotated[str, typer.Option("--scenario", help="A scenario (warmline practice scenarios).")],
    as_json: JsonOpt = False,
) -> None:
    """Ring an agent's own phone with a practice scenario (never a real number)."""
    try:
        started = asyncio.run(_start(ctx, agent, scenario))
    except PracticeError as exc:
        raise fail(exc.message) from exc
    emit(
        {
            "id": started.id,
            "agent": started.agent,
            "scenario": started.scenario,
            "channel_id": started.channel_id,
            "recording_id": started.recording_id,
            "state": "ringing",
        },
        as_json,
        _(
            "practice call {id}: {agent}'s phone is ringing ({scenario})",
            id=started.id,
            agent=agent,
            scenario=scenario,
        ),
    )


@practice_app.command("list")
def practice_list(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Practice calls, newest first."""
    with cli_context(ctx).database().session() as session:
        rows = service.practice_calls(session, utcnow(), agent)
    emit(rows, as_json, _table(rows))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _("no practice calls yet")
    return "\n".join(
        f"{r['id']:>5} {r['agent']:<14} {r['scenario']:<22} {r['state']:<13} "
        f"{r['started_at']:%Y-%m-%d %H:%M} {r['recording_id'] or '-'}"
        for r in rows
    )


@practice_app.command("review")
def practice_review(ctx: typer.Context, practice_id: int, as_json: JsonOpt = False) -> None:
    """Put a recorded practice call into the QA queue, to be scored with the scorecards."""
    with cli_context(ctx).database().session() as session:
        try:
            row = service.get_call(session, practice_id)
            if row.recording_id is None or row.state != "done":
                raise fail(_("practice call {id} has no recording yet", id=practice_id))
            item = put_up_practice(session, row.recording_id, scenario=row.scenario, actor=CLI_ACTOR)
            answer = {"practice_id": practice_id, "item_id": item.id, "recording_id": row.recording_id}
        except (PracticeError, ReviewError) as exc:
            raise fail(str(exc)) from exc
    emit(
        answer,
        as_json,
        _("practice call {id} is in the QA queue as item {item}", id=practice_id, item=answer["item_id"]),
    )
