"""The dialer worker's side of agents' calls: take the attempts agents asked for, place them
(agents.placed_calls: the agent's phone first, then the far end), close them like any dialer call.
A callback the dialer itself finds due while it is still kept for its agent is placed the same way
(:func:`kept_callbacks`): that agent's phone first, so within its grace nobody else gets it.

:func:`take_requests` gives the worker's node the requests no worker has taken yet (a guarded
UPDATE of the attempt's node: one worker each), dropping those nobody took in time. A call that
reached no far end (the agent did not answer, Asterisk could not be reached) is no attempt at the
contact: :func:`close_placed` forgets it and gives the contact back to the agent; any other is
closed with its outcome (busy, no answer, talked to the agent…) and the contact follows the
campaign's rules or the agent's wrap-up, as dialer.engine.ledger.close does for every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agents.handover import CallOrigin
from agents.handover.call import NumberGate
from agents.models import SipAccount
from agents.placed_calls import PlacedCallRequest, PlacedCallResult
from core.audit import audit
from core.auth.models import User
from core.phones import mask
from core.settings import AsteriskNode, Settings
from dialer.agent_dial.service import DEFAULT_HOLD, UNASSIGNED, expire_unplaced, script_fields
from dialer.engine.calls import endpoint_for
from dialer.engine.ledger import Claimed, Closed, close, forget_undialled
from dialer.models import Attempt, AttemptState, Campaign, Contact, ContactState
from dialer.outcomes import CallFacts, Outcome


@dataclass(frozen=True)
class PlacedClaim:
    """One requested call taken by this worker, with what placing it needs (no ORM object)."""

    attempt_id: str
    campaign_id: int
    campaign: str
    contact_id: int
    phone_e164: str
    name: str | None
    agent: str
    endpoint: str
    kind: str
    caller_id: str | None = None
    elder_welfare: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    by_dialer: bool = False  # a callback the dialer places for the agent who promised it


# Built once: the dialer asks it every second (issue 13, Round 7).
_ASKED = select(Attempt.id).where(Attempt.node == UNASSIGNED, Attempt.state == AttemptState.created).limit(1)


def anyone_asked(session: Session) -> bool:
    """Is a requested call waiting for a node? (The usual pass: no, in one query.)"""
    return session.scalar(_ASKED) is not None


def take_requests(session: Session, node: str, now: datetime, limit: int = 20) -> list[PlacedClaim]:
    """The requested calls this node places now (its own from here on: reconciliation follows them)."""
    if not anyone_asked(session):
        return []  # the usual pass: nobody asked, so nothing to take or to expire (one query)
    expire_unplaced(session, now)
    waiting = session.scalars(
        select(Attempt)
        .where(Attempt.node == UNASSIGNED, Attempt.state == AttemptState.created)
        .order_by(Attempt.created_at, Attempt.id)
        .limit(limit)
    )
    claims = []
    for attempt in list(waiting):
        taken = session.execute(
            update(Attempt)
            .where(Attempt.id == attempt.id, Attempt.node == UNASSIGNED)
            .values(node=node)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(taken, "rowcount", 0) or 0) != 1:
            continue  # another worker was faster
        claim = _claim(session, attempt)
        if claim is None:
            forget_undialled(session, attempt.id, attempt.contact_id)
            continue
        claims.append(claim)
    session.flush()
    return claims


def _claim(session: Session, attempt: Attempt) -> PlacedClaim | None:
    contact = session.get(Contact, attempt.contact_id)
    campaign = session.get(Campaign, attempt.campaign_id)
    endpoint = session.scalar(
        select(SipAccount.endpoint)
        .join(User, User.id == SipAccount.user_id)
        .where(User.name == attempt.agent)
    )
    if contact is None or campaign is None or not attempt.agent or endpoint is None:
        return None
    placed = (attempt.detail or {}).get("placed") or {}
    return PlacedClaim(
        attempt_id=attempt.id,
        campaign_id=campaign.id,
        campaign=campaign.name,
        contact_id=contact.id,
        phone_e164=contact.phone_e164,
        name=contact.name,
        agent=attempt.agent,
        endpoint=endpoint,
        kind=str(placed.get("kind") or "preview"),
        caller_id=campaign.caller_id,
        elder_welfare=campaign.elder_welfare,
        fields=script_fields(contact, campaign),
    )


def kept_callbacks(session: Session, claimed: Sequence[Claimed]) -> dict[str, PlacedClaim]:
    """Of the contacts the dialer just claimed, the callbacks still kept for the agent who promised
    them: placed as that agent's own call (their phone first), so nobody else takes them. The
    attempt is theirs from now on. By attempt id; a callback whose agent has no phone is left to
    the usual hand-over (which offers it to them first)."""
    kept = {}
    for c in claimed:
        attempt = session.get(Attempt, c.attempt_id) if c.assigned_agent else None
        if attempt is None:
            continue
        attempt.agent = c.assigned_agent
        attempt.detail = {**(attempt.detail or {}), "placed": {"by": "dialer", "kind": "callback"}}
        placed = _claim(session, attempt)
        if placed is None:
            attempt.agent = None
            attempt.detail = {k: v for k, v in attempt.detail.items() if k != "placed"}
            continue
        kept[c.attempt_id] = replace(placed, by_dialer=True)
    session.flush()
    return kept


def placed_request(
    claim: PlacedClaim,
    node: AsteriskNode,
    settings: Settings,
    on_progress: Callable[[str], Awaitable[None]] | None = None,
    *,
    on_agent: Callable[[str], Awaitable[None]] | None = None,
    number_gate: NumberGate | None = None,
) -> PlacedCallRequest:
    """What the call needs: the agent's endpoint, the far end as this node dials it, the screen pop."""
    origin = CallOrigin(
        campaign=claim.campaign,
        campaign_id=claim.campaign_id,
        elder_welfare=claim.elder_welfare,
        attempt_id=claim.attempt_id,
        contact_id=claim.contact_id,
        contact_name=claim.name,
        phone_masked=mask(claim.phone_e164),
        fields=claim.fields,
    )
    return PlacedCallRequest(
        call_id=claim.attempt_id,
        agent=claim.agent,
        agent_endpoint=claim.endpoint,
        destination=endpoint_for(node.dial_template, claim.phone_e164),
        origin=origin,
        caller_id=claim.caller_id,
        agent_ring_timeout=settings.agent_ring_timeout,
        ring_timeout=settings.dialer_ring_timeout,
        on_progress=on_progress,
        on_agent=on_agent,
        number_gate=number_gate,
        unanswered_state="break" if claim.by_dialer else "available",
    )


def _facts(result: PlacedCallResult) -> tuple[CallFacts, Outcome | None]:
    flow_outcome = "agent" if result.outcome == "connected" else ("abandoned" if result.answered else None)
    facts = CallFacts(answered=result.answered, hangup_cause=result.hangup_cause, flow_outcome=flow_outcome)
    failed = result.outcome in ("error", "not_placed") and not result.answered
    return facts, (Outcome.failed if failed else None)


def _detail(claim: PlacedClaim, result: PlacedCallResult) -> dict[str, Any]:
    detail: dict[str, Any] = {"agent": str(result)[:200], "agent_name": result.agent or claim.agent}
    if result.outcome == "agent_hangup":
        detail["agent_hung_up"] = True  # before the far end answered
    if result.error:
        detail["agent_error"] = result.error[:300]
    if result.recording_id:
        detail["recording"] = result.recording_id
    return detail


def close_placed(
    session: Session, claim: PlacedClaim, result: PlacedCallResult, now: datetime
) -> Closed | None:
    """Close the attempt of a placed call in the caller's transaction; None when it was forgotten
    (no far end was dialled: nothing to count), and the contact is the agent's again."""
    if not result.far_end_dialled:
        forget_undialled(session, claim.attempt_id, claim.contact_id)
        contact = session.get(Contact, claim.contact_id)
        if contact is not None and contact.state is ContactState.pending:
            contact.reserved_by, contact.reserved_until = claim.agent, now + DEFAULT_HOLD
        audit(session, claim.agent, "call.not_placed", claim.attempt_id, campaign=claim.campaign,
              contact_id=claim.contact_id, reason=result.outcome, error=result.error)  # fmt: skip
        return None
    facts, outcome = _facts(result)
    return close(session, claim.attempt_id, facts, now, outcome=outcome, detail=_detail(claim, result))
