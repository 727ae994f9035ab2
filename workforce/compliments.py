"""Compliments reach the agent as they happen: a caller's survey score at or above
``survey_compliment_score`` (default 5) is published on the bus as a ``compliment`` CallEvent
(``calls/<call_ref>``; ``detail``: ``agent``, ``score``, ``survey_id``, ``line``, ``campaign``; no
words, so the agent's phone says it in its own language).

The scores are stored by whichever process ran the survey (the hotline, the dialer: ivr.survey), so
one follower reads ``call_surveys`` (:func:`new_compliments`, a pure step over the table) and the
``compliments`` worker of ``warmline up`` publishes (:func:`publish_compliments`). The service
holds them for the agent's softphone with the nailed calls' screen pops (agents.screen_pops); the
phone says each politely, never over a call (softphone.wellbeing). My day counts them as before
(workforce.my_day).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import Database
from core.features import ServiceContext
from core.messages import CallEvent
from ivr.models import CallSurvey

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
Publish = Callable[[CallEvent], Awaitable[Any]]


@dataclass
class ComplimentWatch:
    after_id: int  # the last survey row looked at


def start_watch(session: Session) -> ComplimentWatch:
    """From now on: the scores already stored were news before the follower began."""
    return ComplimentWatch(after_id=int(session.scalar(select(func.max(CallSurvey.id))) or 0))


def new_compliments(session: Session, watch: ComplimentWatch, threshold: int) -> list[CallEvent]:
    """The compliments stored since the last look, oldest first (scores below ``threshold`` and
    scores with no agent are passed over)."""
    rows = list(
        session.scalars(select(CallSurvey).where(CallSurvey.id > watch.after_id).order_by(CallSurvey.id))
    )
    if rows:
        watch.after_id = rows[-1].id
    return [
        CallEvent(
            call_id=row.call_ref,
            campaign=row.campaign,
            kind="compliment",
            detail={
                "agent": row.agent,
                "score": row.score,
                "survey_id": row.id,
                "line": row.line,
                "campaign": row.campaign,
            },
        )
        for row in rows
        if row.agent and row.score >= threshold
    ]


async def publish_compliments(
    db: Database, publish: Publish, threshold: int, *, every: float = CHECK_EVERY_S
) -> None:
    """Publish every new compliment until cancelled (a database error waits a turn)."""
    watch: ComplimentWatch | None = None

    def look() -> list[CallEvent]:
        nonlocal watch
        with db.session() as session:
            if watch is None:
                watch = start_watch(session)
                return []
            return new_compliments(session, watch, threshold)

    while True:
        try:
            events = await asyncio.to_thread(look)
        except Exception:
            log.exception("reading survey scores")
            events = []
        for event in events:
            try:
                await publish(event)
            except Exception:
                log.exception("publishing a compliment for %s", event.detail.get("agent"))
        await asyncio.sleep(every)


async def serve_compliments(ctx: ServiceContext) -> None:
    """The ``compliments`` worker: callers' high scores to their agents' phones, as they come."""
    if ctx.bus is not None:
        await publish_compliments(ctx.db, ctx.bus.publish, ctx.settings.survey_compliment_score)
