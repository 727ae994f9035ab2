"""`warmline agents ...`: agents' profiles on the command line.

warmline agents list [--json]
warmline agents show NAME [--json]
warmline agents set NAME [--skills a,b] [--daily-hours 4] [--lines l1,l2] [--languages zh-CN,en]
                         [--manual-dial/--no-manual-dial] [--level trainee|supervised|agent] [--json]
warmline agents rotate-sip NAME [--json]

A list is comma-separated (a Chinese comma or 、 will do); an empty one (``--lines ""``) clears
the field. Every change is audited with the actor ``cli``. Registered by ``agents.plugin``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agents import profiles
from agents.profiles import Profile, ProfileError
from agents.service import rotate_agent_secret, sync_endpoints
from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.i18n import _

agents_app = typer.Typer(
    help="Agents' profiles: skills, inbound lines, languages, daily target hours.", no_args_is_help=True
)

OPTION = {
    "skills": "--skills",
    "lines": "--lines",
    "languages": "--languages",
    "daily_hours": "--daily-hours",
    "daily_target_minutes": "--daily-hours",
    "level": "--level",
}


def _error(exc: ProfileError, name: str) -> typer.Exit:
    if isinstance(exc, profiles.AgentNotFound):
        return fail(_("{problem} (`warmline agents list` shows the agents)", problem=exc.problem))
    if exc.field is None:
        return fail(exc.problem)
    option = OPTION.get(exc.field, exc.field)
    return fail(
        _(
            "{option}: {problem} (agent '{name}'; nothing was changed)",
            option=option,
            problem=exc.problem,
            name=name,
        )
    )


@agents_app.command("list")
def agents_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every agent with their skills, lines, languages and daily target (disabled ones too)."""
    with cli_context(ctx).database().session() as session:
        rows = profiles.list_profiles(session)
    emit([p.model_dump() for p in rows], as_json, _table(rows))


def _table(rows: list[Profile]) -> str:
    if not rows:
        return _("no agents yet (add one: warmline users add NAME --role agent)")
    agent, skills, lines_, languages, daily = _("agent"), _("skills"), _("lines"), _("languages"), _("daily")
    level = _("level")
    head = f"{agent:<16} {skills:<24} {lines_:<20} {languages:<14} {level:<10} {daily}"
    lines = [head]
    every, disabled = _("all"), _("(disabled)")
    for p in rows:
        name = p.name + (" " + disabled if p.disabled else "")
        lines.append(
            f"{name:<16} {','.join(p.skills) or '-':<24} {','.join(p.lines) or every:<20} "
            f"{','.join(p.languages) or '-':<14} {profiles.level_text(p.level):<10} "
            f"{profiles.hours_text(p.daily_target_minutes)}"
        )
    return "\n".join(lines)


@agents_app.command("show")
def agents_show(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """One agent's profile."""
    with cli_context(ctx).database().session() as session:
        try:
            profile = profiles.get_profile(session, name)
        except ProfileError as exc:
            raise _error(exc, name) from exc
    emit(profile.model_dump(), as_json, profile.text())


@agents_app.command("set")
def agents_set(
    ctx: typer.Context,
    name: str,
    skills: Annotated[
        str | None, typer.Option("--skills", help="Skills, comma-separated (e.g. welfare,vaccination).")
    ] = None,
    daily_hours: Annotated[
        str | None, typer.Option("--daily-hours", help="Daily target in hours, more than 0, at most 24.")
    ] = None,
    lines: Annotated[
        str | None,
        typer.Option("--lines", help="Inbound lines served, by name or number; empty: every line."),
    ] = None,
    languages: Annotated[
        str | None, typer.Option("--languages", help="Language tags spoken (e.g. zh-CN,yue,en).")
    ] = None,
    manual_dial: Annotated[
        bool | None,
        typer.Option(
            "--manual-dial/--no-manual-dial",
            help="May dial typed numbers, in campaigns that allow it (manual_dial: true).",
        ),
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            help="trainee, supervised or agent: campaigns and lines with min_level take no one below it.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the parts of an agent's profile that are given; the others stay as they are."""
    if all(v is None for v in (skills, daily_hours, lines, languages, manual_dial, level)):
        raise fail(
            _(
                "agents set: nothing to change: give --skills, --daily-hours, --lines, --languages"
                " or --level (or --manual-dial / --no-manual-dial)"
            )
        )
    try:
        hours = profiles.parse_hours(daily_hours) if daily_hours is not None else None
        with cli_context(ctx).database().session() as session:
            profile, changed = profiles.update_profile(
                session,
                name,
                actor=CLI_ACTOR,
                skills=profiles.split_list(skills) if skills is not None else None,
                lines=profiles.split_list(lines) if lines is not None else None,
                languages=profiles.split_list(languages) if languages is not None else None,
                daily_hours=hours,
                manual_dial=manual_dial,
                level=level,
            )
    except ProfileError as exc:
        raise _error(exc, name) from exc
    said = _("changed: {fields}", fields=", ".join(changed)) if changed else _("nothing changed")
    emit(profile.model_dump() | {"changed": changed}, as_json, f"{profile.text()} ({said})")


@agents_app.command("rotate-sip")
def agents_rotate_sip(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Give an agent a new SIP secret (Asterisk is told at once; the old one stops working).

    The secret is not shown: the agent's softphone fetches it when it next signs in."""
    cli = cli_context(ctx)
    try:
        with cli.database().session() as session:
            endpoint = rotate_agent_secret(session, name, actor=CLI_ACTOR)
    except ProfileError as exc:
        raise _error(exc, name) from exc
    sync = asyncio.run(sync_endpoints(cli.settings, cli.database()))
    said = "".join(_("; asterisk {node}: {result}", node=node, result=what) for node, what in sync.items())
    emit(
        {"name": name, "endpoint": endpoint, "rotated": True, "sync": sync},
        as_json,
        _("new SIP secret for {name}; the softphone fetches it at its next sign-in", name=name) + said,
    )
