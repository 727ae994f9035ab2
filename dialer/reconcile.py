"""Crash safety: make the attempts ledger agree with what Asterisk actually has.

Run when the dialer starts and after every ARI reconnect (Asterisk restarted, or the socket
dropped), for one node, over the live attempts (created, dialing, answered) this worker is not
already following:

- the channel still exists → followed again (the worker re-subscribes; a call waiting for its
  answer or running AMD carries on as usual), or hung up when its campaign no longer runs;
- the channel is gone → the attempt is closed as `reconciled` with outcome `interrupted` and the
  contact is rescheduled by the campaign's rules counted from now (the reconcile time), so nobody
  is called again before their retry delay -- unless an agent had taken the call (the attempt
  names them): that conversation happened, it is closed as `agent` and not redialled;
- a contact left in_progress without any live attempt goes back to pending.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.engine.ledger import LIVE_STATES, close, release_orphans
from dialer.models import Attempt, AttemptState, Campaign, CampaignStatus
from dialer.outcomes import CallFacts, Outcome

log = logging.getLogger(__name__)

JSON = dict[str, Any]


@dataclass
class ReconcileReport:
    alive: list[str] = field(default_factory=list)  # attempts to follow again
    hang_up: list[str] = field(default_factory=list)  # alive, but their campaign stopped
    closed: list[str] = field(default_factory=list)
    released: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "alive": len(self.alive),
            "hang_up": len(self.hang_up),
            "closed": len(self.closed),
            "released": self.released,
        }


def reconcile(
    session: Session,
    node: str,
    channels: Collection[str],
    now: datetime,
    *,
    following: Collection[str] = (),
) -> ReconcileReport:
    """Decide, in the caller's transaction, what becomes of each live attempt on `node`.

    `channels` are the ids Asterisk lists now; `following` the attempts this worker still drives.
    """
    report = ReconcileReport()
    rows = session.execute(
        select(Attempt.id, Attempt.state, Attempt.answered_at, Campaign.status, Attempt.agent)
        .join(Campaign, Campaign.id == Attempt.campaign_id)
        .where(Attempt.node == node, Attempt.state.in_(LIVE_STATES))
    ).all()
    for attempt_id, state, answered_at, status, agent in rows:
        if attempt_id in following:
            continue
        if attempt_id in channels:
            if status is CampaignStatus.running:
                report.alive.append(attempt_id)
            else:
                report.hang_up.append(attempt_id)
            continue
        answered = answered_at is not None or state is AttemptState.answered
        close(
            session,
            attempt_id,
            CallFacts(answered=answered or agent is not None),
            now,
            # An agent had taken the call: that conversation happened, it is not redialled.
            outcome=Outcome.agent if agent is not None else Outcome.interrupted,
            state=AttemptState.reconciled,
            detail={"reconciled": "no channel in Asterisk after a restart", "was": state.value},
        )
        report.closed.append(attempt_id)
    report.released = release_orphans(session)
    return report
