"""The database side of agents placing calls. Every function takes the moment it acts at (`now`).

**Preview.** :func:`next_preview` gives an agent the next due contact of a running preview
campaign they are eligible for (the campaign's ``skill`` and ``language`` against their profile,
as routing reads it), their own due callbacks first, then by campaign priority and due time. The
contact is reserved to them for ``hold`` (``reserved_by``/``reserved_until``, set by a guarded
UPDATE, so two agents never get the same contact); asking again gives the same contact while the
reservation holds; each contact shown is audited (``preview.show``). Contacts outside their
calling window or caps are moved to when they may be called, and ones on a do-not-call list are
cancelled, as the dialer's claim does. A skip
(:func:`skip_preview`) frees the contact for the others, is kept with its reason and audited, and
the contact is not offered to the same agent again that day.

**Dial.** :func:`request_dial` checks a request -- a contact reserved to the agent or whose
callback is kept for them, or a typed number where both the campaign and the agent allow it --
against the do-not-call lists, the calling window and the caps, and writes the attempt (state
``created``, the agent on it, no node yet) with the contact ``in_progress``, in the caller's
transaction. A dialer worker then takes it and places it (dialer.agent_dial.runner). A refusal is a
:class:`DialRefused` with an HTTP status, a stable code and a message for the agent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from agents.models import AgentProfile, SipAccount
from agents.routing import FULL_LEVEL, AgentCandidate, Need, day_start
from agents.states import current_state
from core.audit import audit, note_ref
from core.auth.models import Role, User
from core.i18n import N_, _
from core.phones import mask, mask_in_text
from dialer import dnc
from dialer.campaigns import CampaignSpec, spec_of
from dialer.engine.ledger import LIVE_STATES, forget_undialled, park
from dialer.lists import phones
from dialer.models import (
    Attempt,
    AttemptState,
    Campaign,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactState,
    PreviewSkip,
)
from dialer.schedule import caps_allow, in_window, next_allowed_by_caps, next_window_start
from dialer.scripts import pop_fields
from dialer.wake import wake

UNASSIGNED = ""  # an attempt's node until a dialer worker takes it
PICKUP_WAIT = timedelta(seconds=30)  # a request no dialer has taken by then is dropped
DEFAULT_HOLD = timedelta(minutes=3)
CANDIDATES = 20  # contacts looked at per request
# Requests stored by this process (`note_asked`, after their commit): a dialer worker in the same
# process looks for them at its next pass instead of at its next once-a-second look.
_asked = [0]


def note_asked() -> None:
    """A request was committed in this process: wake the dialer workers here."""
    _asked[0] += 1
    wake()  # their pass may be asleep (nothing else due): it takes the request now


def asked_count() -> int:
    """How many requests this process committed so far (a worker compares it with its last look)."""
    return _asked[0]


SKIP_REASONS: dict[str, str] = {
    "not_now": N_("Not a good moment to call this person"),
    "language": N_("Needs an agent who speaks their language"),
    "known": N_("I know this person"),
    "other": N_("Other"),
}


class DialRefused(Exception):
    """A request the server will not carry out: `status` for HTTP, `code` stable for programs,
    `message` for the agent (in their language), `extra` what a program may act on."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def public(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class Desk:
    """The agent asking: their name, their phone and what routing knows about them."""

    name: str
    endpoint: str | None
    candidate: AgentCandidate
    manual_dial: bool = False

    def may_take(self, campaign: Campaign) -> bool:
        return Need(campaign.skill, (), campaign.language, campaign.min_level).met_by(self.candidate)


def desk_of(session: Session, name: str) -> Desk:
    row = session.execute(
        select(User.name, SipAccount.endpoint, AgentProfile)
        .outerjoin(SipAccount, SipAccount.user_id == User.id)
        .outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(User.name == name, User.role == Role.agent)
    ).first()
    if row is None:
        raise DialRefused(403, "not_an_agent", _("Only agents place calls."))
    _name, endpoint, profile = row
    candidate = AgentCandidate(
        agent=name,
        endpoint=endpoint or "",
        skills=tuple(profile.skills or ()) if profile else (),
        languages=tuple(profile.languages or ()) if profile else (),
        lines=tuple(profile.lines or ()) if profile else (),
        level=(profile.level or FULL_LEVEL) if profile else FULL_LEVEL,
    )
    return Desk(name, endpoint, candidate, bool(profile.manual_dial) if profile else False)


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


def _local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _zone(contact: Contact, spec: CampaignSpec) -> str:
    return contact.timezone or spec.timezone


def script_fields(contact: Contact, campaign: Campaign) -> dict[str, str]:
    """The list columns the agent's PC receives (screen pop, SIP headers): only those the campaign's
    script uses or its `screen_pop` names -- never every column of the list."""
    fields = contact.fields or {}
    wanted = pop_fields(campaign.script, campaign.screen_pop)
    return {k: str(fields[k]) for k in wanted if k != "phone" and fields.get(k) not in (None, "")}


def _fields(contact: Contact, campaign: Campaign) -> dict[str, str]:
    """The preview's columns for the agent's eyes: those the script needs, numbers in them masked."""
    return {k: mask_in_text(v) for k, v in script_fields(contact, campaign).items()}


def _kept_for(contact: Contact, now: datetime) -> str | None:
    if contact.assigned_agent and contact.assigned_until is not None and now < contact.assigned_until:
        return contact.assigned_agent
    return None


# ------------------------------------------------------------------------------ preview


@dataclass
class PreviewContact:
    contact_id: int
    campaign: str
    name: str | None
    phone: str  # masked
    fields: dict[str, str]
    attempts: int
    last_outcome: str | None
    reserved_until: datetime
    timezone: str
    callback_at: datetime | None = None  # set when it is the agent's own callback

    def public(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "campaign": self.campaign,
            "name": self.name,
            "phone": self.phone,
            "fields": self.fields,
            "attempts": self.attempts,
            "last_outcome": self.last_outcome,
            "reserved_until": _iso(self.reserved_until),
            "timezone": self.timezone,
            "callback_at": _iso(self.callback_at),
        }


def _preview_of(
    contact: Contact, campaign: Campaign, agent: str, until: datetime, now: datetime
) -> PreviewContact:
    mine = _kept_for(contact, now) == agent
    return PreviewContact(
        contact_id=contact.id,
        campaign=campaign.name,
        name=contact.name,
        phone=mask(contact.phone_e164),
        fields=_fields(contact, campaign),
        attempts=contact.attempts,
        last_outcome=contact.last_outcome,
        reserved_until=until,
        timezone=_zone(contact, spec_of(campaign)),
        callback_at=contact.next_due_at if mine else None,
    )


def _preview_campaigns(session: Session, desk: Desk) -> list[Campaign]:
    stmt = (
        select(Campaign)
        .where(Campaign.status == CampaignStatus.running, Campaign.mode == CampaignMode.preview)
        .order_by(Campaign.priority.desc(), Campaign.name)
    )
    return [c for c in session.scalars(stmt) if desk.may_take(c)]


def _skipped_today(session: Session, agent: str, now: datetime, tz: str) -> list[int]:
    since = day_start(now, tz)
    stmt = select(PreviewSkip.contact_id).where(PreviewSkip.agent == agent, PreviewSkip.at >= since)
    return list(set(session.scalars(stmt)))


def _starts(session: Session, contact_id: int) -> list[datetime]:
    return list(session.scalars(select(Attempt.created_at).where(Attempt.contact_id == contact_id)))


def _parked(
    session: Session, campaign: Campaign, spec: CampaignSpec, contact: Contact, now: datetime
) -> bool:
    """Whether a due contact may not be called now: moved to when it may (window, caps), or
    cancelled (do-not-call), as the dialer's claim does."""
    tz = contact.timezone
    if not in_window(spec, now, tz):
        park(contact, next_window_start(spec, now, tz), "window_closed")
        return True
    starts = _starts(session, contact.id)
    if not caps_allow(spec, starts, now, tz):
        park(contact, next_window_start(spec, next_allowed_by_caps(spec, starts, now, tz), tz), "caps")
        return True
    if dnc.is_blocked(session, campaign.id, contact.phone_e164):
        contact.state = ContactState.cancelled
        contact.last_outcome = "dnc"
        contact.next_due_at = None
        return True
    return False


def _reserve(session: Session, contact_id: int, agent: str, now: datetime, until: datetime) -> bool:
    """Reserve a pending contact for `agent` unless someone else holds it (guarded: one winner)."""
    res = session.execute(
        update(Contact)
        .where(
            Contact.id == contact_id,
            Contact.state == ContactState.pending,
            or_(
                Contact.reserved_until.is_(None), Contact.reserved_until <= now, Contact.reserved_by == agent
            ),
        )
        .values(reserved_by=agent, reserved_until=until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(res, "rowcount", 0) or 0) == 1


def next_preview(
    session: Session, desk: Desk, now: datetime, *, hold: timedelta = DEFAULT_HOLD, tz: str = "Asia/Shanghai"
) -> PreviewContact | None:
    """The contact reserved to the agent now (the one they hold, or the next one due); None when
    nothing is due for them. `tz` is the centre's zone (when "today" starts for skips)."""
    held = session.execute(
        select(Contact, Campaign)
        .join(Campaign, Campaign.id == Contact.campaign_id)
        .where(
            Contact.reserved_by == desk.name,
            Contact.reserved_until > now,
            Contact.state == ContactState.pending,
            Campaign.status == CampaignStatus.running,
        )
        .order_by(Contact.reserved_until.desc())
        .limit(1)
    ).first()
    if held is not None:
        contact, campaign = held
        assert contact.reserved_until is not None
        return _preview_of(contact, campaign, desk.name, contact.reserved_until, now)
    campaigns = {c.id: c for c in _preview_campaigns(session, desk)}
    if not campaigns:
        return None
    mine = (Contact.assigned_agent == desk.name) & (Contact.assigned_until > now)
    stmt = (
        select(Contact)
        .join(Campaign, Campaign.id == Contact.campaign_id)
        .where(
            Contact.campaign_id.in_(campaigns),
            Contact.state == ContactState.pending,
            (Contact.next_due_at.is_(None)) | (Contact.next_due_at <= now),
            or_(
                Contact.reserved_until.is_(None),
                Contact.reserved_until <= now,
                Contact.reserved_by == desk.name,
            ),
            # a callback kept for another agent is theirs until its grace ends
            or_(
                Contact.assigned_agent.is_(None),
                Contact.assigned_until.is_(None),
                Contact.assigned_until <= now,
                mine,
            ),
            Contact.id.not_in(_skipped_today(session, desk.name, now, tz)),
        )
        .order_by(
            case((mine, 0), else_=1),
            Campaign.priority.desc(),
            Contact.next_due_at.is_not(None),
            Contact.next_due_at,
            Contact.id,
        )
        .limit(CANDIDATES)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True, of=Contact)
    specs: dict[int, CampaignSpec] = {}
    for contact in list(session.scalars(stmt)):
        campaign = campaigns[contact.campaign_id]
        spec = specs.setdefault(campaign.id, spec_of(campaign))
        if _parked(session, campaign, spec, contact, now):
            continue
        session.flush()  # what was parked first, then the guarded UPDATE
        until = now + hold
        if _reserve(session, contact.id, desk.name, now, until):
            # Who was shown whose name and details (numbers masked): personal data, audited.
            audit(session, desk.name, "preview.show", str(contact.id), campaign=campaign.name)
            return _preview_of(contact, campaign, desk.name, until, now)
    session.flush()
    return None


def skip_preview(
    session: Session, desk: Desk, contact_id: int, reason: str, note: str | None, now: datetime
) -> Contact:
    """Pass over a previewed contact: kept with its reason, audited; the contact goes back to the
    others (a callback kept for this agent is given up) and is not offered to them again today."""
    if reason not in SKIP_REASONS:
        raise DialRefused(
            422,
            "invalid_reason",
            _("Choose a reason: {reasons}.", reasons=", ".join(SKIP_REASONS)),
            field="reason",
        )
    contact = session.get(Contact, contact_id)
    if contact is None or contact.reserved_by != desk.name:
        raise DialRefused(403, "not_reserved", _("This contact is not shown to you; ask for the next one."))
    contact.reserved_by = None
    contact.reserved_until = None
    gave_up = _kept_for(contact, now) == desk.name
    if gave_up:
        contact.assigned_agent = None
        contact.assigned_until = None
    clean = mask_in_text(note.strip())[:500] if note and note.strip() else None
    session.add(
        PreviewSkip(
            contact_id=contact.id,
            campaign_id=contact.campaign_id,
            agent=desk.name,
            reason=reason,
            note=clean,
            at=now,
        )
    )
    audit(session, desk.name, "preview.skip", str(contact.id), campaign_id=contact.campaign_id, reason=reason,
          note=note_ref(session, clean, f"contact:{contact.id}"), callback_given_up=gave_up)  # fmt: skip
    session.flush()
    return contact


# ------------------------------------------------------------------------------ callbacks and calls


@dataclass
class CallbackItem:
    contact_id: int
    campaign: str
    name: str | None
    phone: str
    callback_at: datetime | None
    kept_until: datetime
    due: bool
    timezone: str
    note: str | None

    def public(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "campaign": self.campaign,
            "name": self.name,
            "phone": self.phone,
            "callback_at": _iso(self.callback_at),
            "kept_until": _iso(self.kept_until),
            "due": self.due,
            "timezone": self.timezone,
            "note": self.note,
        }


def my_callbacks(session: Session, agent: str, now: datetime) -> list[CallbackItem]:
    """The callbacks kept for the agent (promised by them, their grace not over), soonest first."""
    rows = session.execute(
        select(Contact, Campaign)
        .join(Campaign, Campaign.id == Contact.campaign_id)
        .where(
            Contact.assigned_agent == agent,
            Contact.assigned_until > now,
            Contact.state == ContactState.pending,
            Campaign.status != CampaignStatus.finished,
        )
        .order_by(Contact.next_due_at, Contact.id)
    ).all()
    items = []
    for contact, campaign in rows:
        note = session.scalar(
            select(Attempt.note)
            .where(Attempt.contact_id == contact.id, Attempt.wrapped_up_at.is_not(None))
            .order_by(Attempt.wrapped_up_at.desc())
            .limit(1)
        )
        assert contact.assigned_until is not None
        items.append(
            CallbackItem(
                contact_id=contact.id,
                campaign=campaign.name,
                name=contact.name,
                phone=mask(contact.phone_e164),
                callback_at=contact.next_due_at,
                kept_until=contact.assigned_until,
                due=contact.next_due_at is None or contact.next_due_at <= now,
                timezone=_zone(contact, spec_of(campaign)),
                note=mask_in_text(note) if note else None,
            )
        )
    return items


def my_calls(session: Session, agent: str, limit: int = 20) -> list[dict[str, Any]]:
    """The agent's recent calls (taken or placed), newest first, with exactly these keys."""
    rows = session.execute(
        select(Attempt.id, Attempt.contact_id, Campaign.name, Attempt.created_at, Attempt.wrapped_up_at)
        .join(Campaign, Campaign.id == Attempt.campaign_id)
        .where(Attempt.agent == agent)
        .order_by(Attempt.created_at.desc(), Attempt.id)
        .limit(limit)
    )
    return [
        {
            "call_ref": call_ref,
            "contact_id": contact_id,
            "campaign": campaign,
            "started_at": _iso(started),
            "wrapped_up": wrapped is not None,
        }
        for call_ref, contact_id, campaign, started, wrapped in rows
    ]


# ------------------------------------------------------------------------------ dial


@dataclass(frozen=True)
class DialTarget:
    """A contact by id, or a typed number for a campaign."""

    contact_id: int | None = None
    number: str | None = None
    campaign: str | None = None


@dataclass
class DialRequested:
    call_ref: str
    campaign: str
    contact_id: int
    phone: str  # masked
    name: str | None
    kind: str  # preview | callback | manual
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        who = self.name or self.phone
        return _("Your phone rings first; once you answer, {who} is called.", who=who)

    def public(self) -> dict[str, Any]:
        return {
            "call_ref": self.call_ref,
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "phone": self.phone,
            "name": self.name,
            "kind": self.kind,
            "message": self.message,
        }


def expire_unplaced(session: Session, now: datetime, agent: str | None = None) -> list[str]:
    """Requests no dialer took within PICKUP_WAIT are dropped (nothing was dialled): the attempt
    goes and the contact is as it was, still reserved to the agent who asked."""
    stmt = select(Attempt).where(
        Attempt.node == UNASSIGNED,
        Attempt.state == AttemptState.created,
        Attempt.created_at < now - PICKUP_WAIT,
    )
    if agent is not None:
        stmt = stmt.where(Attempt.agent == agent)
    dropped = []
    for attempt in list(session.scalars(stmt)):
        who, contact_id = attempt.agent, attempt.contact_id
        forget_undialled(session, attempt.id, contact_id)
        contact = session.get(Contact, contact_id)
        if contact is not None and who and contact.state is ContactState.pending:
            contact.reserved_by, contact.reserved_until = who, now + DEFAULT_HOLD
        audit(session, who or "dialer", "call.not_placed", attempt.id, reason="no dialer took the request")
        dropped.append(attempt.id)
    session.flush()
    return dropped


def _ready(session: Session, desk: Desk, now: datetime) -> None:
    """The agent can take a call they place: a phone, no call of theirs being placed, not on a call."""
    if not desk.endpoint:
        raise DialRefused(409, "no_phone", _("You have no phone account; an administrator must add one."))
    expire_unplaced(session, now, desk.name)
    placing = session.scalar(
        select(Attempt.id).where(Attempt.agent == desk.name, Attempt.state.in_(LIVE_STATES)).limit(1)
    )
    if placing is not None:
        raise DialRefused(
            409,
            "already_dialing",
            _("A call of yours is being placed; wait until it ends."),
            call_ref=placing,
        )
    state = current_state(session, desk.name)
    if state is not None and state.state == "on_call":
        raise DialRefused(409, "on_call", _("You are on a call; finish it first."))


def _campaign_open(campaign: Campaign, desk: Desk) -> None:
    if campaign.status is not CampaignStatus.running:
        raise DialRefused(
            409, "campaign_not_running",
            _("Campaign {campaign} is {status}; it places no calls.", campaign=campaign.name, status=campaign.status.value),
        )  # fmt: skip
    if not desk.may_take(campaign):
        needs = [_("skill {skill}", skill=campaign.skill) if campaign.skill else ""]
        needs.append(_("speaks {language}", language=campaign.language) if campaign.language else "")
        needs.append(_("level {level} or above", level=campaign.min_level) if campaign.min_level else "")
        raise DialRefused(
            403, "not_eligible",
            _("Campaign {campaign} is for agents with: {needs}.", campaign=campaign.name,
              needs=", ".join(n for n in needs if n)),
        )  # fmt: skip


def _on_dnc(session: Session, campaign: Campaign, e164: str) -> None:
    if dnc.is_blocked(session, campaign.id, e164):
        raise DialRefused(
            409, "do_not_call",
            _("{phone} is on the do-not-call list; it must not be called.", phone=mask(e164)),
        )  # fmt: skip


def _may_call_now(session: Session, spec: CampaignSpec, contact: Contact, now: datetime) -> None:
    """The calling window and the caps, in the callee's zone."""
    tz, zone = contact.timezone, _zone(contact, spec)
    if not in_window(spec, now, tz):
        opens = next_window_start(spec, now, tz)
        if opens is None:
            raise DialRefused(409, "outside_window", _("This campaign calls nobody any more."), opens_at=None)
        raise DialRefused(
            409, "outside_window",
            _("Outside the calling window: calls to this person may start at {time} ({zone}).",
              time=_local(opens, zone), zone=zone),
            opens_at=_iso(opens),
        )  # fmt: skip
    starts = _starts(session, contact.id)
    if not caps_allow(spec, starts, now, tz):
        allowed = next_window_start(spec, next_allowed_by_caps(spec, starts, now, tz), tz)
        when = _local(allowed, zone) if allowed else "-"
        raise DialRefused(
            409, "call_limit",
            _("This person has had as many calls as the campaign allows for now; next from {time} ({zone}).",
              time=when, zone=zone),
            allowed_at=_iso(allowed),
        )  # fmt: skip


def _contact_for(
    session: Session, desk: Desk, contact_id: int, now: datetime
) -> tuple[Contact, Campaign, str]:
    """A contact the agent may call now (reserved to them, or their callback), and why."""
    contact = session.get(Contact, contact_id)
    campaign = session.get(Campaign, contact.campaign_id) if contact is not None else None
    if contact is None or campaign is None:
        raise DialRefused(404, "unknown_contact", _("There is no contact {id}.", id=contact_id))
    _campaign_open(campaign, desk)
    _on_dnc(session, campaign, contact.phone_e164)
    if contact.state is ContactState.in_progress:
        raise DialRefused(409, "contact_busy", _("This person is being called already."))
    if contact.state is not ContactState.pending:
        raise DialRefused(
            409,
            "contact_closed",
            _("This contact is {state}; it is not to be called.", state=contact.state.value),
        )
    if _kept_for(contact, now) == desk.name:
        if contact.next_due_at is not None and contact.next_due_at > now:
            zone = _zone(contact, spec_of(campaign))
            raise DialRefused(
                409, "not_due",
                _("This callback is due at {time} ({zone}).", time=_local(contact.next_due_at, zone), zone=zone),
                due_at=_iso(contact.next_due_at),
            )  # fmt: skip
        return contact, campaign, "callback"
    if contact.reserved_by == desk.name:
        return contact, campaign, "preview"
    raise DialRefused(403, "not_reserved", _("This contact is not shown to you; ask for the next one."))


def _typed(session: Session, desk: Desk, target: DialTarget, region: str) -> tuple[Contact, Campaign, str]:
    """A typed number, where the agent and the campaign allow it: the campaign's contact with that
    number (added when it has none)."""
    if not desk.manual_dial:
        raise DialRefused(
            403, "manual_dial_not_allowed", _("You may not dial typed numbers; a supervisor can allow it.")
        )
    campaign = session.scalar(select(Campaign).where(Campaign.name == (target.campaign or "")))
    if campaign is None:
        raise DialRefused(
            404, "unknown_campaign", _("There is no campaign {campaign}.", campaign=target.campaign)
        )
    _campaign_open(campaign, desk)
    if not campaign.manual_dial:
        raise DialRefused(
            403,
            "manual_dial_not_allowed",
            _("Campaign {campaign} does not allow typed numbers.", campaign=campaign.name),
        )
    phone = phones.normalise(target.number or "", region, frozenset(campaign.allowed_countries or ["CN"]))
    if phone.e164 is None:
        raise DialRefused(
            422,
            "invalid_number",
            _("Not a number this campaign can call: {why}.", why=phone.detail),
            field="number",
        )
    _on_dnc(session, campaign, phone.e164)
    contact = session.scalar(
        select(Contact).where(Contact.campaign_id == campaign.id, Contact.phone_e164 == phone.e164)
    )
    if contact is None:
        contact = Contact(campaign_id=campaign.id, phone_e164=phone.e164, fields={}, state=ContactState.pending,
                          attempts=0, outcome_counts={})  # fmt: skip
        session.add(contact)
        session.flush()
    elif contact.state is ContactState.in_progress:
        raise DialRefused(409, "contact_busy", _("This person is being called already."))
    return contact, campaign, "manual"


def _take(session: Session, contact: Contact) -> bool:
    """The contact → in_progress, only from the state it was read in (another caller may be faster)."""
    res = session.execute(
        update(Contact)
        .where(Contact.id == contact.id, Contact.state == contact.state)
        .values(state=ContactState.in_progress)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(res, "rowcount", 0) or 0) == 1


def request_dial(
    session: Session, desk: Desk, target: DialTarget, now: datetime, *, region: str = "CN"
) -> DialRequested:
    """Check a dial request and write its attempt (not yet placed) in the caller's transaction."""
    _ready(session, desk, now)
    if target.contact_id is not None:
        contact, campaign, kind = _contact_for(session, desk, target.contact_id, now)
    else:
        contact, campaign, kind = _typed(session, desk, target, region)
    spec = spec_of(campaign)
    _may_call_now(session, spec, contact, now)
    session.flush()
    if not _take(session, contact):
        raise DialRefused(409, "contact_busy", _("This person is being called already."))
    session.refresh(contact)
    contact.reserved_by = None
    contact.reserved_until = None
    contact.last_attempt_at = now
    attempt = Attempt(
        id=str(uuid.uuid4()),
        campaign_id=campaign.id,
        contact_id=contact.id,
        attempt_no=contact.attempts + 1,
        node=UNASSIGNED,
        state=AttemptState.created,
        created_at=now,
        agent=desk.name,
        detail={"placed": {"by": desk.name, "kind": kind}},
    )
    session.add(attempt)
    audit(
        session, desk.name, "call.place", attempt.id, campaign=campaign.name, contact_id=contact.id, kind=kind
    )
    session.flush()
    return DialRequested(attempt.id, campaign.name, contact.id, mask(contact.phone_e164), contact.name, kind)
