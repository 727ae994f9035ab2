"""Help in a hard call's part of the service: the agents' help key and abusive-call flag, the
supervisors' listen / whisper / join, and the Stasis handlers of the supervisor's and snoop legs."""

from __future__ import annotations

from agents.help.api import agent_router, supervisor_router
from agents.help.coach import SNOOP_ARG, SUPERVISOR_ARG, on_snoop, on_supervisor_leg
from core.features import Registry


def register(registry: Registry) -> None:
    registry.router(agent_router, supervisor_router)
    registry.stasis_start(SUPERVISOR_ARG, on_supervisor_leg)
    registry.stasis_start(SNOOP_ARG, on_snoop)
