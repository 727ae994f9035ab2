"""Cool-downs on the bus, for the agent's softphone: when one starts and when it ends.

A cool-down starts wherever a call ends (an abusive flag, the rung hand-over, a nailed call, a call
the agent placed) and ends by the clock, with nobody there to say so. So one follower reads
``agent_cooldowns`` (:func:`cooldown_changes`, a pure step over the table) and publishes each start
as a ``cooldown`` CallEvent and each end as ``cooldown_end`` (:func:`publish_cooldowns`, the
``cooldown-notices`` worker of ``warmline up``). The topic is ``calls/<call_ref>`` (``cooldown-<id>``
for a rest with no call); ``detail`` carries ``agent``, ``reason``, ``until`` (ISO, UTC),
``remaining_s`` and ``cooldown_id``: no words, so each softphone says it in its own language.
The service keeps them for the agent's phone with the nailed calls' screen pops (agents.screen_pops,
``GET /api/agents/me/screen-pops``).

Two processes following the same table both publish: the softphone says a cool-down once
(it knows the ``cooldown_id``s it has said).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.help.models import AgentCooldown
from core.db import Database, utcnow
from core.messages import CallEvent

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
COOLDOWN_KINDS = frozenset({"cooldown", "cooldown_end"})
Publish = Callable[[CallEvent], Awaitable[Any]]


@dataclass
class CooldownWatch:
    """Where the follower stands: the rows it has announced started and ended."""

    since: datetime  # rows started before this were running when the follower began: not news
    started: set[int] = field(default_factory=set)
    ended: set[int] = field(default_factory=set)


def _event(row: AgentCooldown, kind: str, now: datetime) -> CallEvent:
    remaining = max(0, round((row.until - now).total_seconds())) if kind == "cooldown" else 0
    return CallEvent(
        call_id=row.call_ref or f"cooldown-{row.id}",
        kind=kind,
        detail={
            "agent": row.agent,
            "reason": row.reason,
            "until": row.until.isoformat(),
            "remaining_s": remaining,
            "cooldown_id": row.id,
        },
    )


def cooldown_changes(session: Session, watch: CooldownWatch, now: datetime) -> list[CallEvent]:
    """The starts and ends since the last look, in time order. A rest cut short by a longer one
    of the same agent still ends when its own time is up; the agent's phone asks the server
    (``GET /api/agents/me/cooldown``) whether another is running."""
    rows = session.scalars(
        select(AgentCooldown)
        .where(AgentCooldown.started_at <= now, AgentCooldown.until > watch.since)
        .order_by(AgentCooldown.started_at, AgentCooldown.id)
    )
    events: list[tuple[datetime, CallEvent]] = []
    for row in rows:
        running_before = row.started_at < watch.since
        if row.id not in watch.started and not running_before and row.until > now:
            watch.started.add(row.id)
            events.append((row.started_at, _event(row, "cooldown", now)))
        if row.id not in watch.ended and row.until <= now and row.until > watch.since:
            watch.ended.add(row.id)
            watch.started.add(row.id)
            events.append((row.until, _event(row, "cooldown_end", now)))
    # The sets hold only rows that can still appear: a day is far longer than any rest.
    horizon = now - timedelta(days=1)
    if len(watch.ended) > 1000:
        keep = {r.id for r in session.scalars(select(AgentCooldown).where(AgentCooldown.until > horizon))}
        watch.started &= keep
        watch.ended &= keep
    return [event for _, event in sorted(events, key=lambda pair: pair[0])]


async def publish_cooldowns(
    db: Database,
    publish: Publish,
    *,
    now: Callable[[], datetime] = utcnow,
    every: float = CHECK_EVERY_S,
) -> None:
    """Publish every cool-down's start and end until cancelled (a database error waits a turn)."""
    watch = CooldownWatch(since=now())

    def look() -> list[CallEvent]:
        with db.session() as session:
            return cooldown_changes(session, watch, now())

    while True:
        try:
            events = await asyncio.to_thread(look)
        except Exception:
            log.exception("reading cool-downs")
            events = []
        for event in events:
            try:
                await publish(event)
            except Exception:
                log.exception("publishing %s for %s", event.kind, event.detail.get("agent"))
        await asyncio.sleep(every)
