"""The agents' part of the service: their API (with their profiles'), ``warmline agents``, and the
workers that keep what agents' softphones publish on the bus (states, call quality) and nailed
calls' screen pops for the softphones to fetch, ``warmline sip``
and the SIP guard that blocks addresses failing SIP sign-in."""

from __future__ import annotations

from agents.api import router
from agents.cli import agents_app
from agents.events import record_agent_states, record_call_quality
from agents.profile_api import router as profile_router
from agents.screen_pops import follow_screen_pops
from agents.sip_cli import sip_app
from agents.sip_guard import SipGuard
from core.features import Registry, ServiceContext


async def keep_agent_states(ctx: ServiceContext) -> None:
    if ctx.bus is not None:  # without a bus there is nothing to keep
        await record_agent_states(ctx.bus, ctx.db)


async def keep_call_quality(ctx: ServiceContext) -> None:
    if ctx.bus is not None:
        await record_call_quality(ctx.bus, ctx.db)


async def keep_screen_pops(ctx: ServiceContext) -> None:
    """Hold nailed calls' screen pops for the agents' softphones (agents.screen_pops)."""
    if ctx.bus is not None:
        await follow_screen_pops(ctx.bus)


async def guard_sip(ctx: ServiceContext) -> None:
    """Block addresses that keep failing SIP sign-in (Asterisk's security log)."""
    await SipGuard(ctx.settings, ctx.db).run()


def register(registry: Registry) -> None:
    registry.router(router, profile_router)
    registry.commands("agents", agents_app)
    registry.commands("sip", sip_app)
    registry.worker("agent-states", keep_agent_states)
    registry.worker("call-quality", keep_call_quality)
    registry.worker("screen-pops", keep_screen_pops)
    registry.worker("sip-guard", guard_sip)
