"""Which agents the dialer keeps on the line (agents.handover.nailed), pass by pass.

An agent of a progressive or predictive campaign who is ``available`` and not nailed up is called
once. Who hung their nailed leg up is not called again until their state changes (a break, a
call, a new ``available``): hanging up means "ring me as before". A nailed agent who goes on a
break or logs out has their leg hung up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime

from agents import routing
from agents.handover.nailed import NailedAgents
from core.db import Database

log = logging.getLogger(__name__)

AWAY = frozenset({"break", "logged_out"})


class NailKeeper:
    """Keeps the free agents of paced campaigns nailed up on one node."""

    def __init__(self, nailed: NailedAgents, db: Database, tz: str | None = None) -> None:
        self.nailed = nailed
        self.db = db
        self.tz = tz
        self.tried: dict[str, datetime | None] = {}  # agent -> the state's start when last called
        self._busy = False

    def plan(
        self, rows: Iterable[routing.AgentCandidate], skills: set[str | None]
    ) -> tuple[list[routing.AgentCandidate], list[str]]:
        """(agents to call, agents whose nailed leg to hang up)."""
        call: list[routing.AgentCandidate] = []
        release: list[str] = []
        for row in rows:
            nailed = self.nailed.nailed(row.agent)
            if row.state in AWAY:
                self.tried.pop(row.agent, None)
                if nailed:
                    release.append(row.agent)
                continue
            if nailed or row.state != "available":
                continue
            if not any(row.has_skill(skill) for skill in skills):
                continue
            if row.agent in self.tried and self.tried[row.agent] == row.state_since:
                continue  # called for this availability already (and hung up, or did not answer)
            call.append(row)
        return call, release

    async def keep(self, skills: set[str | None], now: datetime) -> int:
        """One pass: call who should be nailed up, hang up who went away; how many were called."""
        if self._busy or not skills:
            return 0
        self._busy = True
        try:

            def read() -> list[routing.AgentCandidate]:
                with self.db.session() as session:
                    return routing.candidates(session, now=now, tz=self.tz)

            call, release = self.plan(await asyncio.to_thread(read), skills)
            for agent in release:
                await self.nailed.release(agent)
            for row in call:
                self.tried[row.agent] = row.state_since
            await asyncio.gather(*(self.nailed.nail_up(row.agent, row.endpoint) for row in call))
            return len(call)
        except Exception:
            log.exception("keeping agents on the line failed")
            return 0
        finally:
            self._busy = False
