"""The dialer's database side: claim due contacts, write attempts, close them with their contact.

Every function takes the moment it acts at (`now`), so retry timing is tested with a clock the
test controls. Invariants kept here:

- an attempt row is committed before its originate; its id is the ARI channel id;
- `(contact_id, attempt_no)` is unique and `attempt_no` is the contact's attempts + 1, so an
  attempt is never counted twice;
- an attempt is closed and its contact updated (attempts, outcome counts, last outcome, next due
  time or finished) in ONE transaction; closing an already closed attempt changes nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from agents.states import current_state
from dialer import dnc
from dialer.campaigns import CampaignSpec, spec_of
from dialer.models import Attempt, AttemptState, Campaign, Contact, ContactState
from dialer.outcomes import RETRY_RULE, CallFacts, Outcome, classify, is_final
from dialer.schedule import caps_allow, in_window, next_allowed_by_caps, next_attempt_at, next_window_start
from dialer.welfare.service import raise_alert
from dialer.wrapup import apply_to_contact

log = logging.getLogger(__name__)

LIVE_STATES = (AttemptState.created, AttemptState.dialing, AttemptState.answered)
DIALER_ACTOR = "dialer"
# A promised callback whose agent is busy is looked at again this often (until the grace ends).
ASSIGNED_RECHECK = timedelta(minutes=1)


@dataclass(frozen=True)
class Claimed:
    """A contact claimed for one call, with what the call needs (no ORM object crosses tasks)."""

    attempt_id: str
    attempt_no: int
    campaign_id: int
    campaign: str
    contact_id: int
    phone_e164: str
    name: str | None
    fields: dict[str, str]
    # The agent a promised callback is kept for (the hand-over offers the call to them first).
    assigned_agent: str | None = None


@dataclass
class Closed:
    """What closing an attempt decided, for the bus and the logs."""

    attempt_id: str
    outcome: str
    contact_state: str
    next_due_at: datetime | None
    alerts: list[str] = field(default_factory=list)
    already: bool = False


def active_attempts(session: Session, campaign_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(Attempt).where(Attempt.state.in_(LIVE_STATES))
    if campaign_id is not None:
        stmt = stmt.where(Attempt.campaign_id == campaign_id)
    return int(session.scalar(stmt) or 0)


def _attempt_starts(
    session: Session, contact_ids: Sequence[int], since: datetime | None
) -> dict[int, list[datetime]]:
    out: dict[int, list[datetime]] = defaultdict(list)
    if not contact_ids:
        return out
    stmt = select(Attempt.contact_id, Attempt.created_at).where(Attempt.contact_id.in_(contact_ids))
    if since is not None:
        stmt = stmt.where(Attempt.created_at >= since)
    for cid, at in session.execute(stmt):
        out[cid].append(at)
    return out


def _taken(now: datetime | None) -> dict[str, Any]:
    """What taking a contact writes: in progress (and, for a claim, when its attempt started)."""
    return {"state": ContactState.in_progress, **({"last_attempt_at": now} if now is not None else {})}


def _take(session: Session, contact_id: int, now: datetime | None = None) -> bool:
    """Pending → in_progress, only if still pending (another worker may have been faster)."""
    res = session.execute(
        update(Contact)
        .where(Contact.id == contact_id, Contact.state == ContactState.pending)
        .values(**_taken(now))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(res, "rowcount", 0) or 0) == 1


def _take_all(session: Session, contact_ids: list[int], now: datetime | None = None) -> set[int]:
    """`_take` for several contacts in one guarded UPDATE: the ids this transaction took. With
    `now`, their attempt's start is written in the same UPDATE (the claim's)."""
    if sqlite3.sqlite_version_info < (3, 35):  # no RETURNING: one at a time
        return {cid for cid in contact_ids if _take(session, cid, now)}
    stmt = (
        update(Contact)
        .where(Contact.id.in_(contact_ids), Contact.state == ContactState.pending)
        .values(**_taken(now))
        .returning(Contact.id)
        .execution_options(synchronize_session=False)
    )
    return set(session.scalars(stmt))


def claim(
    session: Session,
    campaign: Campaign,
    limit: int,
    now: datetime,
    *,
    node: str,
    spec: CampaignSpec | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due contacts of a running campaign and write their attempts.

    Due: pending, next_due_at unset or ≤ now, inside the callee's calling window, allowed by the
    caps, not on a do-not-call list, and -- for a callback kept for an agent -- that agent
    available (or the grace over). A due contact outside its window or caps is moved to the
    moment it becomes callable (so it is not looked at again before then); one whose agent is busy
    is looked at again a minute later; one on a do-not-call list is cancelled. The caller commits:
    claimed contacts and their attempts become visible together, before any originate.
    """
    if limit <= 0:
        return []
    spec = spec or spec_of(campaign)
    stmt = (
        select(Contact)
        .where(
            Contact.campaign_id == campaign.id,
            Contact.state == ContactState.pending,
            (Contact.next_due_at.is_(None)) | (Contact.next_due_at <= now),
        )
        .order_by(Contact.next_due_at.is_not(None), Contact.next_due_at, Contact.id)
        .limit(max(limit * 2, limit + 8))
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True, of=Contact)
    candidates = list(session.scalars(stmt))
    starts = _attempt_starts(session, [c.id for c in candidates], now - timedelta(days=2))
    blocked = dnc.blocked_numbers(session, campaign.id, [c.phone_e164 for c in candidates])
    claimed: list[Claimed] = []
    chosen: list[tuple[Contact, str | None]] = []  # passed every check, not yet taken

    def take_chosen() -> None:
        """The chosen contacts taken at once (only those still pending: another worker may have
        been faster), and their attempts written."""
        if not chosen:
            return
        if postgres:
            taken = {c.id for c, _ in chosen}  # locked by the claim's SELECT ... FOR UPDATE
            session.execute(
                update(Contact)
                .where(Contact.id.in_(taken))
                .values(**_taken(now))
                .execution_options(synchronize_session=False)
            )
        else:
            session.flush()  # earlier parked contacts first, then the guarded UPDATE
            taken = _take_all(session, [c.id for c, _ in chosen], now)
        for contact, kept_for in chosen:
            if contact.id not in taken:
                session.refresh(contact)
                continue
            # Written by the UPDATE above: the objects say so without another UPDATE each.
            set_committed_value(contact, "state", ContactState.in_progress)
            set_committed_value(contact, "last_attempt_at", now)
            claimed.append(_attempt(session, campaign, contact, kept_for, now, node))
        chosen.clear()

    for contact in candidates:
        if len(claimed) + len(chosen) >= limit:
            take_chosen()
            if len(claimed) >= limit:
                break
        tz = contact.timezone
        if not in_window(spec, now, tz):
            opens = next_window_start(spec, now, tz)
            park(contact, opens, "window_closed")
            continue
        if not caps_allow(spec, starts.get(contact.id, []), now, tz):
            allowed = next_allowed_by_caps(spec, starts.get(contact.id, []), now, tz)
            park(contact, next_window_start(spec, allowed, tz), "caps")
            continue
        if contact.phone_e164 in blocked:  # the last check before the dial (one query for all)
            contact.state = ContactState.cancelled
            contact.last_outcome = "dnc"
            contact.next_due_at = None
            continue
        kept_for = _kept_for(contact, now)
        if kept_for is not None and not _available(session, kept_for):
            assert contact.assigned_until is not None
            contact.next_due_at = min(now + ASSIGNED_RECHECK, contact.assigned_until)
            continue
        chosen.append((contact, kept_for))
    take_chosen()
    session.flush()
    return claimed


def _attempt(
    session: Session, campaign: Campaign, contact: Contact, kept_for: str | None, now: datetime, node: str
) -> Claimed:
    """A taken contact's attempt, added to the session (the contact is in progress already)."""
    attempt = Attempt(
        id=str(uuid.uuid4()),
        campaign_id=campaign.id,
        contact_id=contact.id,
        attempt_no=contact.attempts + 1,
        node=node,
        state=AttemptState.created,
        created_at=now,
        detail={},
    )
    session.add(attempt)
    return Claimed(
        attempt_id=attempt.id,
        attempt_no=attempt.attempt_no,
        campaign_id=campaign.id,
        campaign=campaign.name,
        contact_id=contact.id,
        phone_e164=contact.phone_e164,
        name=contact.name,
        fields=dict(contact.fields or {}),
        assigned_agent=kept_for,
    )


def _kept_for(contact: Contact, now: datetime) -> str | None:
    """The agent a callback is still kept for at `now` (None: anyone may take the call)."""
    if contact.assigned_agent and contact.assigned_until is not None and now < contact.assigned_until:
        return contact.assigned_agent
    return None


def _available(session: Session, agent: str) -> bool:
    latest = current_state(session, agent)
    return latest is not None and latest.state == "available"


def took_call(session: Session, attempt_id: str, agent: str) -> None:
    """The hand-over connected `agent` to this attempt's callee: the call (and its wrap-up) is theirs
    -- the last agent's, when a transfer handed the callee on (until it is wrapped up)."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is not None and attempt.wrapped_up_at is None:
        attempt.agent = agent


def park(contact: Contact, until: datetime | None, why: str) -> None:
    """A due contact that may not be called now waits until `until` (None: never again)."""
    if until is None:  # the campaign never opens again for this callee
        contact.state = ContactState.exhausted
        contact.last_outcome = contact.last_outcome or why
        contact.next_due_at = None
    else:
        contact.next_due_at = until


def mark(session: Session, attempt_id: str, state: AttemptState, now: datetime, **detail: Any) -> None:
    """Move a live attempt forward (dialing, answered); never backwards, never a closed one."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.state in (AttemptState.ended, AttemptState.reconciled):
        return
    order = list(LIVE_STATES)
    if state in order and order.index(state) <= order.index(attempt.state):
        return
    attempt.state = state
    if state is AttemptState.answered and attempt.answered_at is None:
        attempt.answered_at = now
    if detail:
        attempt.detail = {**(attempt.detail or {}), **detail}


def rule_name(outcome: Outcome) -> str:
    return RETRY_RULE[outcome]


def _outcome_attempts(counts: dict[str, int], rule: str) -> int:
    """Attempts that ended with an outcome retried under `rule` (hangup_early counts as no_input)."""
    return sum(
        n
        for name, n in counts.items()
        if name in Outcome.__members__ and RETRY_RULE.get(Outcome(name)) == rule
    )


def attempt_starts(session: Session, contact_ids: Sequence[int]) -> dict[int, list[datetime]]:
    """Every attempt's start time for each of these contacts (for `close(starts=...)`)."""
    return dict(_attempt_starts(session, contact_ids, None))


def close(
    session: Session,
    attempt_id: str,
    facts: CallFacts,
    now: datetime,
    *,
    outcome: Outcome | None = None,
    state: AttemptState = AttemptState.ended,
    digits: str | None = None,
    detail: dict[str, Any] | None = None,
    escalate: bool = False,
    answered_at: datetime | None = None,
    specs: dict[int, CampaignSpec] | None = None,
    starts: dict[int, list[datetime]] | None = None,
    flush: bool = True,
) -> Closed | None:
    """Close an attempt and update its contact in the caller's transaction (commit it after).

    `outcome` overrides the classification (reconciliation's `failed`). `answered_at`: when the
    call was answered, if no progress note wrote it (default: `now`). Returns None for an
    unknown attempt; `already=True` when it had been closed before (nothing changes).
    Closing several in one transaction: `specs` keeps each campaign's spec for the next close,
    `starts` (contact id -> its attempts' start times, read for all of them at once) saves a read,
    `flush=False` leaves the rows to the transaction's one flush (its UPDATEs batched by the ORM).
    """
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        return None
    contact = session.get(Contact, attempt.contact_id)
    campaign = session.get(Campaign, attempt.campaign_id)
    if contact is None or campaign is None:
        return None
    if attempt.state in (AttemptState.ended, AttemptState.reconciled):
        return Closed(
            attempt.id, attempt.outcome or "", contact.state.value, contact.next_due_at, already=True
        )
    result = outcome or classify(facts)
    attempt.state = state
    attempt.ended_at = now
    if facts.answered and attempt.answered_at is None:
        attempt.answered_at = answered_at or now
    attempt.hangup_cause = facts.hangup_cause
    attempt.amd_status = facts.amd_status
    attempt.flow_outcome = facts.flow_outcome
    attempt.outcome = result.value
    attempt.digits = (digits or None) and digits[:64]
    if detail:
        attempt.detail = {**(attempt.detail or {}), **detail}
    agent_name = (attempt.detail or {}).get("agent_name")
    if attempt.agent is None and isinstance(agent_name, str):
        attempt.agent = agent_name  # in case the hand-over's note of it was lost

    contact.attempts += 1
    counts = dict(contact.outcome_counts or {})
    counts[result.value] = counts.get(result.value, 0) + 1
    contact.outcome_counts = counts
    contact.last_outcome = result.value
    closed = Closed(attempt.id, result.value, "", None)

    spec = specs.get(campaign.id) if specs is not None else None
    if spec is None:
        spec = spec_of(campaign)
        if specs is not None:
            specs[campaign.id] = spec
    if result is Outcome.opted_out:
        dnc.add_numbers(
            session,
            [contact.phone_e164],
            campaign=None,
            source=f"opt-out during campaign {campaign.name}",
            reason="opted out on the call",
            actor=DIALER_ACTOR,
        )
        contact.state = ContactState.done
        contact.next_due_at = None
    elif is_final(result):
        contact.state = ContactState.done
        contact.next_due_at = None
    else:
        rule = rule_name(result)
        if starts is not None and contact.id in starts:
            contact_starts = starts[contact.id]
        else:
            contact_starts = [
                a
                for (a,) in session.execute(
                    select(Attempt.created_at).where(Attempt.contact_id == contact.id)
                )
            ]
        due = next_attempt_at(
            spec,
            rule,
            _outcome_attempts(counts, rule),
            contact.attempts,
            now,
            contact_starts,
            tz=contact.timezone,
        )
        if due is None:
            contact.state = ContactState.exhausted
            contact.next_due_at = None
        else:
            contact.state = ContactState.pending
            contact.next_due_at = due
    if attempt.wrapped_up_at is not None:
        # The agent's wrap-up arrived before the call was closed: it decides what becomes of the
        # contact (a callback's time, a wrong number), not the call's outcome alone.
        apply_to_contact(session, attempt, contact, spec, now)
    closed.contact_state = contact.state.value
    closed.next_due_at = contact.next_due_at

    if campaign.elder_welfare:
        kind = None
        if result is Outcome.help:
            kind = "help"
        elif escalate:
            kind = "no_input"  # answered, but the elder never pressed a key: someone must look
        elif contact.state is ContactState.exhausted:
            kind = "unreached"
        if kind is not None:
            # In the close's transaction: the alert lands if and only if the outcome does, and the
            # welfare notifier announces it after the commit (the caller may wake it).
            raise_alert(
                session,
                campaign=campaign,
                contact=contact,
                attempt_id=attempt.id,
                kind=kind,
                detail={"outcome": result.value, "attempts": contact.attempts},
            )
            closed.alerts.append(kind)
    if flush:
        session.flush()
    return closed


def forget_undialled(session: Session, attempt_id: str, contact_id: int) -> None:
    """Asterisk could not be reached: nothing was dialled, so nothing is counted. The attempt row
    goes and the contact is due again as it was."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.state is not AttemptState.created:
        return
    session.delete(attempt)
    contact = session.get(Contact, contact_id)
    if contact is not None and contact.state is ContactState.in_progress:
        contact.state = ContactState.pending


def release_orphans(session: Session, campaign_ids: Sequence[int] | None = None) -> int:
    """Contacts left in_progress without a live attempt (a crash between claim and dial, or a
    closed attempt whose contact update was lost) go back to pending, due when they were."""
    live = select(Attempt.contact_id).where(Attempt.state.in_(LIVE_STATES))
    stmt = (
        update(Contact)
        .where(Contact.state == ContactState.in_progress, Contact.id.not_in(live))
        .values(state=ContactState.pending)
        .execution_options(synchronize_session=False)
    )
    if campaign_ids is not None:
        stmt = stmt.where(Contact.campaign_id.in_(campaign_ids))
    return int(getattr(session.execute(stmt), "rowcount", 0) or 0)
