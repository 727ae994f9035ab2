"""An agent's wrap-up of a call: kept on the attempt in the request that carries it, and acted on.

:func:`record_wrapup` checks that the call is the agent's (the attempt's ``agent``, written when
the hand-over connected them), stores the disposition, note, form answers and callback time on
the attempt, and does what the campaign's disposition says (see :mod:`dialer.dispositions`), all in
the caller's transaction:

- at once, whatever has become of the call: an ``opt_out`` puts the number on the global
  do-not-call list, a ``welfare_concern`` raises a welfare alert (kind ``agent_concern``);
- on the contact (due time, state, the agent a callback is kept for): at once when the dialer has
  closed the attempt, else by the dialer's close (:func:`apply_to_contact` from
  ``dialer.engine.ledger.close``) — the softphone usually posts before the dialer has seen the
  far end's hang-up, and the close must not undo the agent's decision.

The same wrap-up posted again (a softphone retrying) changes nothing and gets the first answer; a
different one for a call already wrapped up is refused (409), since its actions have been taken.
Times are injected (`now`), so tests decide what time it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.transfer.service import holder
from core.audit import audit
from core.i18n import _
from core.phones import mask_in_text
from dialer import dnc
from dialer.campaigns import CampaignSpec, spec_of
from dialer.dispositions import Disposition, DispositionAction, find
from dialer.forms import AnswerCheck, Form, check_answers
from dialer.models import Attempt, AttemptState, Campaign, Contact, ContactState
from dialer.schedule import next_allowed_by_caps, next_attempt_at, next_window_start
from dialer.welfare.service import raise_alert

log = logging.getLogger(__name__)

ALERT_KIND = "agent_concern"
RETRY_LATER = "retry_later"  # the retry rule, and the key counting these wrap-ups in outcome_counts
PAST_TOLERANCE = timedelta(minutes=1)  # a callback "now" that took a moment to arrive is not moved
CLOSED_STATES = (AttemptState.ended, AttemptState.reconciled)


@dataclass(frozen=True)
class WrapUpRequest:
    """What the agent's softphone posts about one call."""

    call_ref: str  # the attempt's id (the X-Warmline-Attempt header of the call)
    agent: str
    disposition: str
    note: str | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)
    # When the callee asked to be called back; without a zone it is the callee's local time.
    callback_at: datetime | None = None
    talk_seconds: int = 0


class WrapUpError(Exception):
    """A wrap-up the server cannot take; `status` is the HTTP answer, `code` the stable reason for
    programs, `message` the reason in the current locale, `field` the input at fault."""

    status = 422
    code = "invalid_wrapup"

    def __init__(self, message: str, field: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class UnknownCall(WrapUpError):
    status = 404
    code = "unknown_call"


class NotYourCall(WrapUpError):
    status = 403
    code = "not_your_call"


class InvalidWrapUp(WrapUpError):
    status = 422


class AlreadyWrappedUp(WrapUpError):
    status = 409
    code = "already_wrapped_up"


class InvalidAnswers(InvalidWrapUp):
    """Form answers that fail their questions: `errors` names each (question key -> sentence),
    `kept` holds the answers that passed (stored as the call's draft, so nothing is lost)."""

    def __init__(self, check: AnswerCheck) -> None:
        first = next(iter(check.errors))
        super().__init__("; ".join(check.errors.values()), f"answers.{first}", code="invalid_answers")
        self.errors = dict(check.errors)
        self.kept = dict(check.clean)


@dataclass
class WrapUpResult:
    """What became of a wrap-up, for the response, the bus and the agent's ears."""

    call_ref: str
    campaign: str
    contact_id: int
    agent: str
    disposition: str
    label: str
    action: str
    wrapped_up_at: datetime
    timezone: str  # the callee's: how times are said
    already: bool = False
    callback_at: datetime | None = None
    callback_requested: datetime | None = None
    callback_agent_until: datetime | None = None
    moved: str | None = None  # why the callback is not at the time asked: window, caps, past
    contact_state: str | None = None  # None: set when the dialer closes the call
    alert_id: int | None = None

    def local(self, at: datetime) -> str:
        return at.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M")

    @property
    def message(self) -> str:
        """One or two sentences for the agent (the softphone says them)."""
        action = self.action
        if action == DispositionAction.callback and self.callback_at is not None:
            due = f"{self.local(self.callback_at)} ({self.timezone})"
            asked = self.local(self.callback_requested) if self.callback_requested else ""
            if self.moved == "window":
                head = _(
                    "{asked} is outside the calling window; the callback is moved to {due}.",
                    asked=asked,
                    due=due,
                )
            elif self.moved == "caps":
                head = _(
                    "The contact's call limit is reached at {asked}; the callback is moved to {due}.",
                    asked=asked,
                    due=due,
                )
            elif self.moved == "past":
                head = _("{asked} has passed; the callback is due at once, {due}.", asked=asked, due=due)
            else:
                head = _("Callback on {due}.", due=due)
            if self.callback_agent_until is not None:
                head += " " + _(
                    "It is kept for {agent} until {until}.",
                    agent=self.agent,
                    until=self.local(self.callback_agent_until),
                )
            return head
        texts = {
            DispositionAction.opt_out: _("The number is on the do-not-call list."),
            DispositionAction.welfare_concern: _("A welfare alert is raised for the supervisors."),
            DispositionAction.wrong_number: _("The contact will not be called again."),
            DispositionAction.done: _("The contact is finished."),
            DispositionAction.retry_later: _(
                "The contact will be called again after the campaign's retry delay."
            ),
        }
        return texts.get(DispositionAction(action), "")

    def public(self) -> dict[str, Any]:
        """The HTTP answer; times in ISO 8601, UTC."""
        return {
            "call_ref": self.call_ref,
            "stored": True,
            "already": self.already,
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "disposition": self.disposition,
            "label": self.label,
            "action": self.action,
            "wrapped_up_at": _iso(self.wrapped_up_at),
            "callback_at": _iso(self.callback_at),
            "callback_requested": _iso(self.callback_requested),
            "callback_moved": self.moved,
            "callback_agent": self.agent if self.callback_agent_until else None,
            "callback_agent_until": _iso(self.callback_agent_until),
            "timezone": self.timezone,
            "contact_state": self.contact_state,
            "alert_id": self.alert_id,
            "message": self.message,
        }


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


# ------------------------------------------------------------------------------ recording


def record_wrapup(session: Session, request: WrapUpRequest, now: datetime) -> WrapUpResult:
    """Store the agent's wrap-up on the attempt and act on it, in the caller's transaction.

    Raises UnknownCall (404), NotYourCall (403), InvalidWrapUp (422, naming the field) or
    AlreadyWrappedUp (409: a different wrap-up was stored before)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    # Locked on PostgreSQL, so a retry racing its original cannot act twice.
    attempt = session.get(Attempt, request.call_ref, with_for_update=postgres or None)
    if attempt is None:
        raise UnknownCall(
            _("There is no call '{call}' (call_ref is the call's attempt id).", call=request.call_ref),
            "call_ref",
        )
    # A transfer hands the call (and its wrap-up) to the colleague who took the caller.
    owner = holder(session, request.call_ref) or attempt.agent or (attempt.detail or {}).get("agent_name")
    if owner != request.agent:
        raise NotYourCall(
            _("Call '{call}' was not taken by {agent}; only its agent wraps it up.", call=request.call_ref,
              agent=request.agent),
            "call_ref",
        )  # fmt: skip
    contact = session.get(Contact, attempt.contact_id)
    campaign = session.get(Campaign, attempt.campaign_id)
    if contact is None or campaign is None:  # cascaded away with its campaign
        raise UnknownCall(_("There is no call '{call}'.", call=request.call_ref), "call_ref")
    spec = spec_of(campaign)
    zone = contact.timezone or spec.timezone
    note = (request.note or "").strip() or None
    answers = dict(request.answers)
    requested = _aware(request.callback_at, zone) if request.callback_at is not None else None

    if attempt.wrapped_up_at is not None:
        return _repeat(attempt, campaign, contact, zone, request, note, answers, requested)
    if answers and spec.form is not None:
        # A form filled in is filled in whole: every shown required question answered.
        check = check_answers(spec.form, answers, complete=True)
        if not check.ok:
            raise InvalidAnswers(check)
        answers = check.clean
    elif not answers:
        answers = dict(attempt.answers or {})  # saved with the form during the call

    chosen = find(spec.dispositions, request.disposition)
    if chosen is None:
        codes = ", ".join(d.code for d in spec.dispositions)
        raise InvalidWrapUp(
            _("'{code}' is not a wrap-up of campaign {campaign} ({codes}).", code=request.disposition,
              campaign=campaign.name, codes=codes),
            "disposition",
            code="unknown_disposition",
        )  # fmt: skip
    result = WrapUpResult(
        call_ref=attempt.id,
        campaign=campaign.name,
        contact_id=contact.id,
        agent=request.agent,
        disposition=chosen.code,
        label=chosen.label,
        action=chosen.action.value,
        wrapped_up_at=now,
        timezone=zone,
        callback_requested=requested,
    )
    if chosen.action is DispositionAction.callback:
        if requested is None:
            raise InvalidWrapUp(
                _("A callback needs the time to call back."), "callback_at", code="callback_time_missing"
            )
        due, moved = callback_due(spec, requested, now, _starts(session, contact), contact.timezone)
        if due is None:
            raise InvalidWrapUp(
                _("Campaign {campaign} calls nobody after {end}; choose an earlier time.", campaign=campaign.name,
                  end=spec.end_date),
                "callback_at",
                code="callback_after_end",
            )  # fmt: skip
        result.callback_at, result.moved = due, moved
        result.callback_agent_until = due + timedelta(minutes=spec.callback_grace_minutes)
    elif requested is not None:
        raise InvalidWrapUp(
            _(
                "Only a callback takes a time; {code} is {action}.",
                code=chosen.code,
                action=chosen.action.value,
            ),
            "callback_at",
            code="callback_time_not_wanted",
        )

    attempt.agent = attempt.agent or request.agent
    attempt.disposition = chosen.code
    attempt.note = note
    attempt.answers = answers
    attempt.callback_at = result.callback_at
    attempt.wrapped_up_at = now
    attempt.detail = {
        **(attempt.detail or {}),
        "wrapup": {
            "action": chosen.action.value,
            "label": chosen.label,
            "callback_requested": requested.astimezone(UTC).isoformat() if requested else None,
            "callback_moved": result.moved,
            "callback_agent_until": (
                result.callback_agent_until.isoformat() if result.callback_agent_until else None
            ),
            "talk_seconds": request.talk_seconds,
        },
    }
    _act_at_once(session, chosen, attempt, contact, campaign, result)
    if attempt.state in CLOSED_STATES:  # else the dialer's close applies it
        apply_to_contact(session, attempt, contact, spec, now)
        result.contact_state = contact.state.value
    audit(
        session, request.agent, "attempt.wrapup", attempt.id, campaign=campaign.name, contact_id=contact.id,
        disposition=chosen.code, disposition_action=chosen.action.value,
        callback_at=result.callback_at.isoformat() if result.callback_at else None, moved=result.moved,
    )  # fmt: skip
    session.flush()
    return result


def _starts(session: Session, contact: Contact) -> list[datetime]:
    """When the contact's attempts started (for the per-contact caps)."""
    stmt = select(Attempt.created_at).where(Attempt.contact_id == contact.id)
    return list(session.scalars(stmt))


def _aware(at: datetime, zone: str) -> datetime:
    """A time the agent gave without a zone is the callee's local time (that is what they said)."""
    if at.tzinfo is None or at.utcoffset() is None:
        return at.replace(tzinfo=ZoneInfo(zone))
    return at


def callback_due(
    spec: CampaignSpec, requested: datetime, now: datetime, starts: list[datetime], tz: str | None
) -> tuple[datetime | None, str | None]:
    """When a callback asked for `requested` is due, and why it moved (None: it did not).

    A time that has passed (a wrap-up the softphone could only post later) is due now; then the
    per-contact caps, then the calling window, as for any call. None: the campaign never calls
    again (past its end date)."""
    moved = "past" if requested < now - PAST_TOLERANCE else None
    t = max(requested, now)
    for _step in range(50):
        allowed = next_allowed_by_caps(spec, starts, t, tz)
        opens = next_window_start(spec, allowed, tz)
        if opens is None:
            return None, moved
        if opens > allowed:
            moved = "window"
        elif allowed > t and moved != "window":
            moved = "caps"
        if opens == allowed:
            return opens, moved
        t = opens
    return t, moved


def _repeat(
    attempt: Attempt,
    campaign: Campaign,
    contact: Contact,
    zone: str,
    request: WrapUpRequest,
    note: str | None,
    answers: dict[str, Any],
    requested: datetime | None,
) -> WrapUpResult:
    """The call was wrapped up before: the same wrap-up again gets the first answer, another is refused."""
    stored = (attempt.detail or {}).get("wrapup") or {}
    stored_requested = stored.get("callback_requested")
    same = (
        attempt.disposition == request.disposition
        and attempt.note == note
        and (not answers or (attempt.answers or {}) == _normalised(campaign, answers))
        and stored_requested == (requested.astimezone(UTC).isoformat() if requested else None)
    )
    if not same:
        raise AlreadyWrappedUp(
            _("Call '{call}' was wrapped up as {disposition} at {at}; it cannot change.", call=attempt.id,
              disposition=attempt.disposition, at=attempt.wrapped_up_at.isoformat() if attempt.wrapped_up_at else "?"),
            "disposition",
        )  # fmt: skip
    until = stored.get("callback_agent_until")
    assert attempt.wrapped_up_at is not None
    return WrapUpResult(
        call_ref=attempt.id,
        campaign=campaign.name,
        contact_id=contact.id,
        agent=request.agent,
        disposition=attempt.disposition or "",
        label=str(stored.get("label") or ""),
        action=str(stored.get("action") or ""),
        wrapped_up_at=attempt.wrapped_up_at,
        timezone=zone,
        already=True,
        callback_at=attempt.callback_at,
        callback_requested=requested,
        callback_agent_until=datetime.fromisoformat(until) if until else None,
        moved=stored.get("callback_moved"),
        contact_state=contact.state.value if attempt.state in CLOSED_STATES else None,
    )


def _normalised(campaign: Campaign, answers: dict[str, Any]) -> dict[str, Any]:
    """Answers as they were stored (numbers as numbers, dates as dates), for comparing a repeat."""
    form = spec_of(campaign).form
    return check_answers(form, answers, complete=False).clean if form is not None else answers


# ------------------------------------------------------------------------------ the form


@dataclass
class FormSaved:
    """What became of answers saved with the form endpoint."""

    call_ref: str
    complete: bool
    answers: dict[str, Any]


def store_form(
    session: Session,
    attempt: Attempt,
    form: Form,
    answers: Mapping[str, Any],
    *,
    complete: bool,
    agent: str,
    now: datetime,
) -> FormSaved:
    """Keep a campaign call's form answers on its attempt: complete ones as its `answers` (what the
    export shows), a draft in its detail. Answers that fail keep the rest as the draft and raise
    InvalidAnswers naming the failing questions. The caller commits (also on InvalidAnswers)."""
    check = check_answers(form, answers, complete=complete)
    detail = dict(attempt.detail or {})
    if not check.ok or not complete:
        detail["form_draft"] = {"answers": check.clean, "agent": agent, "at": now.isoformat()}
        attempt.detail = detail
        if not check.ok:
            raise InvalidAnswers(check)
        return FormSaved(attempt.id, False, check.clean)
    detail.pop("form_draft", None)
    attempt.detail = detail
    attempt.answers = check.clean
    attempt.agent = attempt.agent or agent
    audit(session, agent, "attempt.form", attempt.id, questions=len(check.clean))
    return FormSaved(attempt.id, True, check.clean)


def keep_draft(
    session: Session, call_ref: str, agent: str, answers: Mapping[str, Any], now: datetime
) -> bool:
    """The answers that passed, of a wrap-up refused for the others: kept as the call's draft."""
    attempt = session.get(Attempt, call_ref)
    if attempt is None or (attempt.agent or (attempt.detail or {}).get("agent_name")) != agent:
        return False
    if attempt.wrapped_up_at is not None:
        return False
    attempt.detail = {
        **(attempt.detail or {}),
        "form_draft": {"answers": dict(answers), "agent": agent, "at": now.isoformat()},
    }
    return True


def form_draft(attempt: Attempt) -> dict[str, Any]:
    """The answers saved so far: the complete ones, else the draft."""
    if attempt.answers:
        return dict(attempt.answers)
    draft = (attempt.detail or {}).get("form_draft") or {}
    return dict(draft.get("answers") or {})


def _act_at_once(
    session: Session,
    chosen: Disposition,
    attempt: Attempt,
    contact: Contact,
    campaign: Campaign,
    result: WrapUpResult,
) -> None:
    """What must not wait for the call's close: an opt-out, a worry about someone."""
    if chosen.action is DispositionAction.opt_out:
        dnc.add_numbers(
            session,
            [contact.phone_e164],
            campaign=None,
            source=f"opt-out told to agent {result.agent} (campaign {campaign.name})",
            reason="opted out on the call with an agent",
            actor=result.agent,
        )
    elif chosen.action is DispositionAction.welfare_concern:
        alert = raise_alert(
            session,
            campaign=campaign,
            contact=contact,
            attempt_id=attempt.id,
            kind=ALERT_KIND,
            detail={
                "agent": result.agent,
                "disposition": chosen.code,
                "note": mask_in_text(attempt.note or ""),
            },
            actor=result.agent,
        )
        result.alert_id = alert.id


# ------------------------------------------------------------------------------ the contact


def apply_to_contact(
    session: Session, attempt: Attempt, contact: Contact, spec: CampaignSpec, now: datetime
) -> bool:
    """Set the contact as the attempt's wrap-up says (due time, state, the callback's agent).

    Called once the attempt is closed: by :func:`record_wrapup` when the dialer closed it first,
    else by the dialer's close. Nothing happens when a later call to the contact has started since
    (that call decides now) or the number was put on a do-not-call list meanwhile. True when
    applied."""
    wrapup = (attempt.detail or {}).get("wrapup") or {}
    action = wrapup.get("action")
    if attempt.wrapped_up_at is None or action is None:
        return False
    if (
        contact.state in (ContactState.in_progress, ContactState.cancelled)
        or contact.attempts != attempt.attempt_no
    ):
        log.info("wrap-up of %s not applied to contact %s: a later call decides", attempt.id, contact.id)
        return False
    contact.assigned_agent = None
    contact.assigned_until = None
    if action == DispositionAction.callback and attempt.callback_at is not None:
        contact.state = ContactState.pending
        contact.next_due_at = attempt.callback_at
        contact.assigned_agent = attempt.agent
        until = wrapup.get("callback_agent_until")
        contact.assigned_until = (
            datetime.fromisoformat(until)
            if until
            else attempt.callback_at + timedelta(minutes=spec.callback_grace_minutes)
        )
    elif action == DispositionAction.retry_later:
        counts = dict(contact.outcome_counts or {})
        counts[RETRY_LATER] = counts.get(RETRY_LATER, 0) + 1
        contact.outcome_counts = counts
        due = next_attempt_at(
            spec,
            RETRY_LATER,
            counts[RETRY_LATER],
            contact.attempts,
            now,
            _starts(session, contact),
            tz=contact.timezone,
        )
        contact.state = ContactState.pending if due is not None else ContactState.exhausted
        contact.next_due_at = due
    elif action == DispositionAction.wrong_number:
        contact.state = ContactState.cancelled
        contact.next_due_at = None
    else:  # done, opt_out (already on the do-not-call list), welfare_concern (the alert follows it up)
        contact.state = ContactState.done
        contact.next_due_at = None
    return True
