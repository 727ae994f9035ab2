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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from agents.states import current_state
from dialer import dnc
from dialer.campaigns import CampaignSpec, spec_of
from dialer.models import Attempt, AttemptState, Campaign, Contact, ContactState
from dialer.outcomes import RETRY_RULE, CallFacts, Outcome, classify, is_final
from dialer.schedule import caps_allow, in_window, next_allowed_by_caps, next_attempt_at, next_window_start
from dialer.welfare.service import raise_alert
from dialer.wrapup import apply_to_contact

log = logging.getLogger(__name__)

_CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = Attempt.__table__  # type: ignore[assignment]
# What a claim reads of each candidate: no ORM object, no identity map (issue 13, Round 5).
_CANDIDATE = (
    _CONTACTS.c.id,
    _CONTACTS.c.phone_e164,
    _CONTACTS.c.name,
    _CONTACTS.c.fields,
    _CONTACTS.c.timezone,
    _CONTACTS.c.attempts,
    _CONTACTS.c.last_outcome,
    _CONTACTS.c.assigned_agent,
    _CONTACTS.c.assigned_until,
)
Candidate = Any  # a claim's candidate: a row of _CANDIDATE's columns
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


# The statements of the claim's and the close's hot path, built once with their parameters bound
# at execution: building a statement (its operators, coercions and cache key) cost as much as
# running it (issue 13, Round 7). Same SQL as when each call built its own.
_ACTIVE_ALL = select(func.count()).select_from(_ATTEMPTS).where(_ATTEMPTS.c.state.in_(LIVE_STATES))
_ACTIVE_OF = _ACTIVE_ALL.where(_ATTEMPTS.c.campaign_id == bindparam("b_campaign"))
_STARTS = select(_ATTEMPTS.c.contact_id, _ATTEMPTS.c.created_at).where(
    _ATTEMPTS.c.contact_id.in_(bindparam("b_ids", expanding=True))
)
_STARTS_SINCE = _STARTS.where(
    _ATTEMPTS.c.created_at >= bindparam("b_since", type_=_ATTEMPTS.c.created_at.type)
)


def active_attempts(session: Session, campaign_id: int | None = None) -> int:
    if campaign_id is None:
        return int(session.scalar(_ACTIVE_ALL) or 0)
    return int(session.scalar(_ACTIVE_OF, {"b_campaign": campaign_id}) or 0)


def _attempt_starts(
    session: Session, contact_ids: Sequence[int], since: datetime | None
) -> dict[int, list[datetime]]:
    out: dict[int, list[datetime]] = defaultdict(list)
    if not contact_ids:
        return out
    params: dict[str, Any] = {"b_ids": list(contact_ids)}
    if since is not None:
        params["b_since"] = since
    for cid, at in session.execute(_STARTS if since is None else _STARTS_SINCE, params):
        out[cid].append(at)
    return out


def _taken(now: datetime | None) -> dict[str, Any]:
    """What taking a contact writes: in progress (and, for a claim, when its attempt started)."""
    return {"state": ContactState.in_progress, **({"last_attempt_at": now} if now is not None else {})}


def _take(session: Session, contact_id: int, now: datetime | None = None) -> bool:
    """Pending → in_progress, only if still pending (another worker may have been faster)."""
    res = session.execute(
        update(_CONTACTS)
        .where(_CONTACTS.c.id == contact_id, _CONTACTS.c.state == ContactState.pending)
        .values(**_taken(now))
    )
    return int(getattr(res, "rowcount", 0) or 0) == 1


def _take_all(session: Session, contact_ids: list[int], now: datetime | None = None) -> set[int]:
    """`_take` for several contacts in one guarded UPDATE: the ids this transaction took. With
    `now`, their attempt's start is written in the same UPDATE (the claim's)."""
    if sqlite3.sqlite_version_info < (3, 35):  # no RETURNING: one at a time
        return {cid for cid in contact_ids if _take(session, cid, now)}
    if now is None:
        return set(session.scalars(_TAKE_ALL, {"b_ids": list(contact_ids)}))
    return set(session.scalars(_TAKE_ALL_AT, {"b_ids": list(contact_ids), "b_now": now}))


_TAKE_ALL = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id.in_(bindparam("b_ids", expanding=True)), _CONTACTS.c.state == ContactState.pending)
    .values(state=ContactState.in_progress)
    .returning(_CONTACTS.c.id)
)
_TAKE_ALL_AT = _TAKE_ALL.values(last_attempt_at=bindparam("b_now", type_=_CONTACTS.c.last_attempt_at.type))
# A claim's candidates: pending and due, the undated first, then by due time and id.
_CANDIDATES = (
    select(*_CANDIDATE)
    .where(
        _CONTACTS.c.campaign_id == bindparam("b_campaign"),
        _CONTACTS.c.state == ContactState.pending,
        (_CONTACTS.c.next_due_at.is_(None))
        | (_CONTACTS.c.next_due_at <= bindparam("b_now", type_=_CONTACTS.c.next_due_at.type)),
    )
    .order_by(_CONTACTS.c.next_due_at.is_not(None), _CONTACTS.c.next_due_at, _CONTACTS.c.id)
    .limit(bindparam("b_limit", type_=Integer))
)
_CANDIDATES_LOCKED = _CANDIDATES.with_for_update(skip_locked=True, of=_CONTACTS)  # PostgreSQL


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

    Core statements throughout (rows, not ORM objects): a contact of the caller's session that the
    claim changed is expired, so it is read again when next used.
    """
    if limit <= 0:
        return []
    session.flush()  # the caller's pending changes first, as the ORM's autoflush did
    spec = spec or spec_of(campaign)
    postgres = session.get_bind().dialect.name == "postgresql"
    candidates = session.execute(
        _CANDIDATES_LOCKED if postgres else _CANDIDATES,
        {"b_campaign": campaign.id, "b_now": now, "b_limit": max(limit * 2, limit + 8)},
    ).all()
    starts = _attempt_starts(session, [c.id for c in candidates], now - timedelta(days=2))
    blocked = dnc.blocked_numbers(session, campaign.id, [c.phone_e164 for c in candidates])
    claimed: list[Claimed] = []
    chosen: list[tuple[Candidate, str | None]] = []  # passed every check, not yet taken
    touched: list[int] = []

    def take_chosen() -> None:
        """The chosen contacts taken at once (only those still pending: another worker may have
        been faster), and their attempts written in one INSERT."""
        if not chosen:
            return
        ids = [c.id for c, _ in chosen]
        touched.extend(ids)
        if postgres:  # locked by the claim's SELECT ... FOR UPDATE
            session.execute(update(_CONTACTS).where(_CONTACTS.c.id.in_(ids)).values(**_taken(now)))
            taken = set(ids)
        else:
            taken = _take_all(session, ids, now)
        rows = [(c, kept_for) for c, kept_for in chosen if c.id in taken]
        chosen.clear()
        if not rows:
            return
        attempts = [_attempt_row(campaign.id, c, now, node) for c, _ in rows]
        session.execute(insert(_ATTEMPTS), attempts)
        claimed.extend(
            _claimed(campaign, c, kept_for, a) for (c, kept_for), a in zip(rows, attempts, strict=True)
        )

    for contact in candidates:
        if len(claimed) + len(chosen) >= limit:
            take_chosen()
            if len(claimed) >= limit:
                break
        tz = contact.timezone
        changes: dict[str, Any] | None = None
        if not in_window(spec, now, tz):
            changes = _parked(contact.last_outcome, next_window_start(spec, now, tz), "window_closed")
        elif not caps_allow(spec, starts.get(contact.id, []), now, tz):
            allowed = next_allowed_by_caps(spec, starts.get(contact.id, []), now, tz)
            changes = _parked(contact.last_outcome, next_window_start(spec, allowed, tz), "caps")
        elif contact.phone_e164 in blocked:  # the last check before the dial (one query for all)
            changes = {"state": ContactState.cancelled, "last_outcome": "dnc", "next_due_at": None}
        else:
            kept_for = _kept_for(contact, now)
            if kept_for is not None and not _available(session, kept_for):
                assert contact.assigned_until is not None
                changes = {"next_due_at": min(now + ASSIGNED_RECHECK, contact.assigned_until)}
            else:
                chosen.append((contact, kept_for))
        if changes is not None:
            session.execute(update(_CONTACTS).where(_CONTACTS.c.id == contact.id).values(**changes))
            touched.append(contact.id)
    take_chosen()
    _expire_loaded(session, Contact, touched)
    return claimed


def _parked(last_outcome: str | None, until: datetime | None, why: str) -> dict[str, Any]:
    """`park` as the columns it writes (a claim's candidates are rows, not objects)."""
    if until is None:  # the campaign never opens again for this callee
        return {"state": ContactState.exhausted, "last_outcome": last_outcome or why, "next_due_at": None}
    return {"next_due_at": until}


def _expire_loaded(session: Session, model: type[Any], ids: Sequence[Any]) -> None:
    """Objects of `model` the caller's session holds for rows a Core statement changed are read
    again when next used (none, on the dialer's own sessions)."""
    if not len(session.identity_map):
        return
    for key in ids:
        obj = session.identity_map.get(identity_key(model, key))
        if obj is not None:
            session.expire(obj)


def _attempt_row(campaign_id: int, contact: Candidate, now: datetime, node: str) -> dict[str, Any]:
    """A taken contact's attempt, as the row to insert (the contact is in progress already)."""
    return {
        "id": str(uuid.uuid4()),
        "campaign_id": campaign_id,
        "contact_id": contact.id,
        "attempt_no": contact.attempts + 1,
        "node": node,
        "state": AttemptState.created,
        "created_at": now,
        "detail": {},
    }


def _claimed(
    campaign: Campaign, contact: Candidate, kept_for: str | None, attempt: dict[str, Any]
) -> Claimed:
    return Claimed(
        attempt_id=attempt["id"],
        attempt_no=attempt["attempt_no"],
        campaign_id=campaign.id,
        campaign=campaign.name,
        contact_id=contact.id,
        phone_e164=contact.phone_e164,
        name=contact.name,
        fields=dict(contact.fields or {}),
        assigned_agent=kept_for,
    )


def _kept_for(contact: Contact | Candidate, now: datetime) -> str | None:
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


# `mark` for a pass's batch of progress notes, as guarded UPDATEs by key (executemany): forward
# only (a dialing note moves a created attempt; an answered note a created or dialing one), never
# a closed attempt, the answer's first time kept.
_MARK_DIALING = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("b_id"), _ATTEMPTS.c.state == AttemptState.created)
    .values(state=AttemptState.dialing)
)
_MARK_ANSWERED = (
    update(_ATTEMPTS)
    .where(
        _ATTEMPTS.c.id == bindparam("b_id"),
        # Not IN (...): an expanding list cannot go into an executemany.
        (_ATTEMPTS.c.state == AttemptState.created) | (_ATTEMPTS.c.state == AttemptState.dialing),
    )
    .values(
        state=AttemptState.answered,
        answered_at=func.coalesce(
            _ATTEMPTS.c.answered_at, bindparam("b_at", type_=_ATTEMPTS.c.answered_at.type)
        ),
    )
)


def mark_all(session: Session, notes: Mapping[str, tuple[AttemptState, datetime]]) -> None:
    """`mark` for many attempts (attempt id -> the state it reached, and when) in the caller's
    transaction: two statements for the batch, no ORM object read (issue 13, Round 7)."""
    rows: dict[AttemptState, list[dict[str, Any]]] = {AttemptState.dialing: [], AttemptState.answered: []}
    for attempt_id, (state, at) in notes.items():
        if state is AttemptState.dialing:
            rows[state].append({"b_id": attempt_id})
        elif state is AttemptState.answered:
            rows[state].append({"b_id": attempt_id, "b_at": at})
    for state, stmt in ((AttemptState.dialing, _MARK_DIALING), (AttemptState.answered, _MARK_ANSWERED)):
        if rows[state]:
            session.execute(stmt, rows[state])
    _expire_loaded(session, Attempt, list(notes))


def rule_name(outcome: Outcome) -> str:
    return RETRY_RULE[outcome]


def _outcome_attempts(counts: dict[str, int], rule: str) -> int:
    """Attempts that ended with an outcome retried under `rule` (hangup_early counts as no_input)."""
    return sum(
        n
        for name, n in counts.items()
        if name in Outcome.__members__ and RETRY_RULE.get(Outcome(name)) == rule
    )


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
    result = outcome or classify(facts)
    replacing = _replaces_interrupted(attempt, result)
    if replacing:
        _undo_interrupted(contact)
        detail = {**(detail or {}), "replaced": Outcome.interrupted.value}
    elif attempt.state in (AttemptState.ended, AttemptState.reconciled):
        return Closed(
            attempt.id, attempt.outcome or "", contact.state.value, contact.next_due_at, already=True
        )
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
    elif replacing and contact.state is ContactState.in_progress:
        pass  # a replaced `interrupted` whose contact is being called again: that call decides
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


@dataclass(frozen=True)
class Closing:
    """One outcome for `close_all`: `close`'s arguments."""

    attempt_id: str
    facts: CallFacts
    now: datetime
    outcome: Outcome | None = None
    digits: str | None = None
    detail: dict[str, Any] | None = None
    escalate: bool = False
    answered_at: datetime | None = None


# What `close_all` reads of each attempt and contact, and its two UPDATEs (run for many rows).
_CLOSING_ATTEMPT = (
    _ATTEMPTS.c.id,
    _ATTEMPTS.c.contact_id,
    _ATTEMPTS.c.campaign_id,
    _ATTEMPTS.c.state,
    _ATTEMPTS.c.outcome,
    _ATTEMPTS.c.detail,
    _ATTEMPTS.c.wrapped_up_at,
)
_CLOSING_CONTACT = (
    _CONTACTS.c.id,
    _CONTACTS.c.attempts,
    _CONTACTS.c.outcome_counts,
    _CONTACTS.c.timezone,
    _CONTACTS.c.state,
    _CONTACTS.c.next_due_at,
)
_CLOSING_ATTEMPTS = select(*_CLOSING_ATTEMPT).where(_ATTEMPTS.c.id.in_(bindparam("b_ids", expanding=True)))
_CLOSING_CONTACTS = select(*_CLOSING_CONTACT).where(_CONTACTS.c.id.in_(bindparam("b_ids", expanding=True)))
_CLOSING_CAMPAIGNS = select(Campaign).where(Campaign.id.in_(bindparam("b_ids", expanding=True)))
_CLOSE_ATTEMPT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        ended_at=bindparam("b_ended_at"),
        # Kept when a progress note wrote it; None where the callee never answered.
        answered_at=func.coalesce(
            _ATTEMPTS.c.answered_at, bindparam("b_answered_at", type_=_ATTEMPTS.c.answered_at.type)
        ),
        hangup_cause=bindparam("b_hangup_cause"),
        amd_status=bindparam("b_amd_status"),
        flow_outcome=bindparam("b_flow_outcome"),
        outcome=bindparam("b_outcome"),
        digits=bindparam("b_digits"),
        detail=bindparam("b_detail"),
        # The hand-over's note of its agent, in case it was lost (never replaces one).
        agent=func.coalesce(_ATTEMPTS.c.agent, bindparam("b_agent", type_=_ATTEMPTS.c.agent.type)),
    )
)
_CLOSE_CONTACT = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("b_id"))
    .values(
        attempts=bindparam("b_attempts"),
        outcome_counts=bindparam("b_outcome_counts"),
        last_outcome=bindparam("b_last_outcome"),
        state=bindparam("b_state"),
        next_due_at=bindparam("b_next_due_at"),
    )
)


def close_all(session: Session, closings: Sequence[Closing]) -> list[Closed | None]:
    """`close` for several outcomes in the caller's transaction, each result in order (None: an
    unknown attempt). The attempts, contacts and campaigns are read once for all, and the usual
    close -- a plain outcome of a campaign without welfare alerts, not wrapped up yet -- is written
    as rows: one UPDATE of the attempts and one of the contacts for the whole batch, the same
    columns and values `close` writes. An opt-out, an attempt the agent wrapped up first and an
    elder-welfare campaign's attempt go through `close` itself; so does the whole batch when two
    of its outcomes share an attempt or a contact (each must see the one before it)."""
    ids = [c.attempt_id for c in closings]
    attempts = {a.id: a for a in session.execute(_CLOSING_ATTEMPTS, {"b_ids": ids})}
    contact_ids = {a.contact_id for a in attempts.values()}
    campaign_ids = {a.campaign_id for a in attempts.values()}
    contacts = {c.id: c for c in session.execute(_CLOSING_CONTACTS, {"b_ids": list(contact_ids)})}
    campaigns = {c.id: c for c in session.scalars(_CLOSING_CAMPAIGNS, {"b_ids": list(campaign_ids)})}
    specs = {cid: spec_of(c) for cid, c in campaigns.items()}
    starts = _attempt_starts(session, sorted(contact_ids), None)
    if len(set(ids)) < len(ids) or len(contact_ids) < len(attempts):
        return [_close_one(session, c, specs, starts) for c in closings]
    out: list[Closed | None] = []
    attempt_rows: list[dict[str, Any]] = []
    contact_rows: list[dict[str, Any]] = []
    for c in closings:
        attempt = attempts.get(c.attempt_id)
        contact = contacts.get(attempt.contact_id) if attempt is not None else None
        campaign = campaigns.get(attempt.campaign_id) if attempt is not None else None
        if attempt is None or contact is None or campaign is None:
            out.append(None)
            continue
        result = c.outcome or classify(c.facts)
        replacing = _replaces_interrupted(attempt, result)
        if attempt.state in (AttemptState.ended, AttemptState.reconciled) and not replacing:
            out.append(
                Closed(
                    attempt.id, attempt.outcome or "", contact.state.value, contact.next_due_at, already=True
                )
            )
            continue
        special = result is Outcome.opted_out or attempt.wrapped_up_at is not None
        if special or campaign.elder_welfare or replacing:
            out.append(_close_one(session, c, specs, starts))
            continue
        attempt_rows.append(_closed_attempt(c, attempt, result))
        row = _closed_contact(c, contact, specs[campaign.id], result, starts.get(contact.id, []))
        contact_rows.append(row)
        out.append(Closed(attempt.id, result.value, row["b_state"].value, row["b_next_due_at"]))
    if attempt_rows:
        session.execute(_CLOSE_ATTEMPT, attempt_rows)
        session.execute(_CLOSE_CONTACT, contact_rows)
        _expire_loaded(session, Attempt, [r["b_id"] for r in attempt_rows])
        _expire_loaded(session, Contact, [r["b_id"] for r in contact_rows])
    return out


def _replaces_interrupted(attempt: Any, result: Outcome) -> bool:
    """Reconciliation closed the attempt as `interrupted` (no channel, or a foreign worker's call
    it could not tell from a dead one) while the worker that placed the call followed it to its
    end: that worker's real outcome, written later from its journal, takes the place of it."""
    return (
        attempt.state is AttemptState.reconciled
        and attempt.outcome == Outcome.interrupted.value
        and result is not Outcome.interrupted
    )


def _undo_interrupted(contact: Contact) -> None:
    """Take the replaced `interrupted` off the contact's counters (the real outcome counts once)."""
    contact.attempts = max(0, contact.attempts - 1)
    counts = dict(contact.outcome_counts or {})
    left = counts.get(Outcome.interrupted.value, 0) - 1
    if left > 0:
        counts[Outcome.interrupted.value] = left
    else:
        counts.pop(Outcome.interrupted.value, None)
    contact.outcome_counts = counts


def _close_one(
    session: Session, c: Closing, specs: dict[int, CampaignSpec], starts: dict[int, list[datetime]]
) -> Closed | None:
    return close(
        session,
        c.attempt_id,
        c.facts,
        c.now,
        outcome=c.outcome,
        digits=c.digits,
        detail=c.detail,
        escalate=c.escalate,
        answered_at=c.answered_at,
        specs=specs,
        starts=starts,
        flush=False,
    )


def _closed_attempt(c: Closing, attempt: Any, result: Outcome) -> dict[str, Any]:
    """The attempt's columns as `close` writes them (`_CLOSE_ATTEMPT`'s parameters)."""
    detail = {**(attempt.detail or {}), **c.detail} if c.detail else attempt.detail
    agent_name = (detail or {}).get("agent_name")
    return {
        "b_id": attempt.id,
        "b_state": AttemptState.ended,
        "b_ended_at": c.now,
        "b_answered_at": (c.answered_at or c.now) if c.facts.answered else None,
        "b_hangup_cause": c.facts.hangup_cause,
        "b_amd_status": c.facts.amd_status,
        "b_flow_outcome": c.facts.flow_outcome,
        "b_outcome": result.value,
        "b_digits": (c.digits or None) and c.digits[:64],
        "b_detail": detail,
        "b_agent": agent_name if isinstance(agent_name, str) else None,
    }


def _closed_contact(
    c: Closing, contact: Any, spec: CampaignSpec, result: Outcome, contact_starts: list[datetime]
) -> dict[str, Any]:
    """The contact's columns as `close` writes them for an outcome that is not an opt-out."""
    attempts = contact.attempts + 1
    counts = dict(contact.outcome_counts or {})
    counts[result.value] = counts.get(result.value, 0) + 1
    state, due = ContactState.done, None
    if not is_final(result):
        rule = rule_name(result)
        due = next_attempt_at(
            spec, rule, _outcome_attempts(counts, rule), attempts, c.now, contact_starts, tz=contact.timezone
        )
        state = ContactState.exhausted if due is None else ContactState.pending
    return {
        "b_id": contact.id,
        "b_attempts": attempts,
        "b_outcome_counts": counts,
        "b_last_outcome": result.value,
        "b_state": state,
        "b_next_due_at": due,
    }


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
