"""Screen pops of nailed calls, fetched from the server the phone already talks to.

A call the service *rings* this phone with carries its screen pop in the INVITE's ``X-Warmline-*``
headers. A call it *puts through* the open line (the agent nailed up: ``X-Warmline-Nailed``, no
INVITE per callee) has its pop fetched here: a long poll of ``GET /api/agents/me/screen-pops``
(agents.screen_pops on the server), whose answers carry the same fields, the call's ticket among
them. A ``screen_pop`` goes to :meth:`Softphone.put_through` (shown, spoken and looked up as a
ringing call's pop), a ``screen_pop_end`` to :meth:`Softphone.put_through_ended` (the wrap-up).
The same feed brings the agent's notices (a cool-down's start and end, a caller's compliment) to
:meth:`Softphone.notice` (softphone.wellbeing).

The poll runs while the phone runs; a server that is away is asked again after a growing pause
(1, 2, 4 ... 30 s); a server without the feed (404) or a session that ended (401) stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from softphone.provisioning import ProvisioningError, ServerClient

log = logging.getLogger(__name__)

POLL_SECONDS = 25.0
PAUSE_MAX = 30.0
STOP_STATUSES = frozenset({401, 403, 404})


class PutThrough(Protocol):
    async def put_through(self, headers: dict[str, str]) -> bool: ...
    async def put_through_ended(self, attempt: str) -> bool: ...
    async def notice(self, kind: str, fields: dict[str, str]) -> bool: ...


class ScreenPopFeed:
    """Follows the agent's nailed-call pops from the server into the phone."""

    def __init__(
        self,
        server: ServerClient,
        phone: PutThrough,
        *,
        wait: float = POLL_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.server = server
        self.phone = phone
        self.wait = wait
        self.sleep = sleep
        self.after: int | None = None  # None: the phone starts (the server gives the calls going)

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                reply = await self.server.screen_pops(self.after, wait=self.wait)
            except ProvisioningError as exc:
                if exc.status in STOP_STATUSES:
                    log.warning("screen pops of nailed calls are not followed: %s", exc)
                    return
                failures += 1
                await self.sleep(min(PAUSE_MAX, 2.0 ** (failures - 1)))
                continue
            failures = 0
            for pop in reply.get("pops") or []:
                await self.deliver(pop)
            self.after = int(reply.get("last") or 0)

    async def deliver(self, pop: dict[str, Any]) -> None:
        kind = pop.get("kind")
        if kind == "screen_pop":
            headers = {str(k).lower(): str(v) for k, v in (pop.get("fields") or {}).items()}
            headers.setdefault("attempt", str(pop.get("attempt") or ""))
            await self.phone.put_through(headers)
        elif kind == "screen_pop_end":
            await self.phone.put_through_ended(str(pop.get("attempt") or ""))
        elif isinstance(kind, str):  # the agent's notices: cool-downs, compliments
            fields = {str(k): str(v) for k, v in (pop.get("fields") or {}).items()}
            await self.phone.notice(kind, fields)
