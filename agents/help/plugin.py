"""Help in a hard call's part of the service: the agents' help key and abusive-call flag, the
supervisors' listen / whisper / join, the Stasis handlers of the supervisor's and snoop legs, and
the worker that tells agents' softphones when a cool-down starts and ends (agents.help.notices)."""

from __future__ import annotations

from agents.help.api import agent_router, supervisor_router
from agents.help.coach import SNOOP_ARG, SUPERVISOR_ARG, on_snoop, on_supervisor_leg
from agents.help.notices import publish_cooldowns
from core.features import Registry, ServiceContext


async def announce_cooldowns(ctx: ServiceContext) -> None:
    """Each cool-down's start and end on the bus (agents.help.notices)."""
    if ctx.bus is not None:
        await publish_cooldowns(ctx.db, ctx.bus.publish)


def register(registry: Registry) -> None:
    registry.router(agent_router, supervisor_router)
    registry.stasis_start(SUPERVISOR_ARG, on_supervisor_leg)
    registry.stasis_start(SNOOP_ARG, on_snoop)
    registry.worker("cooldown-notices", announce_cooldowns)
