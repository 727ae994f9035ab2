"""`warmline sip ...`: the SIP guard's block list on the command line.

warmline sip blocks [--json]          the addresses blocked now, why and until when
warmline sip block ADDRESS [--minutes N] [--json]   block one by hand (0 minutes: until unblocked)
warmline sip unblock ADDRESS [--json] lift a block (Asterisk is told at once)

Every change is audited with the actor ``cli``; `warmline up` runs the guard that adds blocks by
itself (agents.sip_guard). Registered by ``agents.plugin``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

import typer

from agents import sip_guard
from core import formats
from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail
from core.db import utcnow
from core.i18n import _

sip_app = typer.Typer(help="SIP security: addresses blocked after failed sign-ins.", no_args_is_help=True)


def _rows(ctx: typer.Context) -> list[dict[str, Any]]:
    with cli_context(ctx).database().session() as session:
        return [
            {
                "address": b.address,
                "reason": b.reason,
                "failures": b.failures,
                "since": b.created_at.isoformat(),
                "until": b.until.isoformat() if b.until else None,
            }
            for b in sip_guard.active_blocks(session, utcnow())
        ]


def _text(rows: list[dict[str, Any]], tz: str) -> str:
    if not rows:
        return _("no address is blocked")
    lines = []
    for r in rows:
        until = formats.date_time(r["until"], tz) if r["until"] else _("until unblocked")
        since = formats.date_time(r["since"], tz)
        lines.append(
            _("{address}: {reason}; since {since}, until {until}", **r | {"since": since, "until": until})
        )
    return "\n".join(lines)


def _sync(ctx: typer.Context) -> dict[str, str]:
    cli = cli_context(ctx)
    return asyncio.run(sip_guard.sync_blocks(cli.settings, cli.database()))


@sip_app.command("blocks")
def sip_blocks(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The addresses blocked now (Asterisk refuses them), why, and until when."""
    rows = _rows(ctx)
    emit(rows, as_json, _text(rows, cli_context(ctx).settings.timezone))


@sip_app.command("block")
def sip_block(
    ctx: typer.Context,
    address: str,
    minutes: Annotated[
        float, typer.Option("--minutes", help="How long; 0: until `warmline sip unblock`.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Block an address by hand."""
    if minutes < 0:
        raise fail(_("--minutes: must be 0 or more"))
    try:
        with cli_context(ctx).database().session() as session:
            until = utcnow() + timedelta(minutes=minutes) if minutes else None
            row = sip_guard.block(
                session, address, reason=_("blocked by hand"), failures=0, until=until, actor=CLI_ACTOR
            )
            blocked = row.address
    except sip_guard.SipGuardError as exc:
        raise fail(str(exc)) from exc
    sync = _sync(ctx)
    emit({"address": blocked, "sync": sync}, as_json, _("blocked {address}", address=blocked))


@sip_app.command("unblock")
def sip_unblock(ctx: typer.Context, address: str, as_json: JsonOpt = False) -> None:
    """Lift a block: the address may sign in again at once."""
    try:
        with cli_context(ctx).database().session() as session:
            sip_guard.unblock(session, address, actor=CLI_ACTOR)
    except sip_guard.SipGuardError as exc:
        raise fail(_("{problem} (`warmline sip blocks` lists the blocks)", problem=exc)) from exc
    sync = _sync(ctx)
    emit(
        {"address": address.strip(), "sync": sync}, as_json, _("unblocked {address}", address=address.strip())
    )
