"""The agents' side of the bus: keep the ledger from the states the softphones publish."""

from __future__ import annotations

import logging

from agents.states import record_state
from core.bus import Bus
from core.db import Database
from core.messages import AgentState

log = logging.getLogger(__name__)


async def record_agent_states(bus: Bus, db: Database) -> None:
    """Runs for the life of the service; retained states re-delivered after a reconnect are no-ops."""
    async with bus.subscribe(AgentState.pattern(), AgentState) as states:
        async for _path, state in states:
            with db.session() as session:
                if record_state(session, state):
                    log.info("agent %s is %s", state.agent, state.state)
