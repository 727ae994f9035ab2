"""The agent's desk for one call: its script and form, for a campaign's call or an inbound line's.

The softphone asks for them with the call's ``call_ref`` (the ``X-Warmline-Attempt`` header) and
the ticket its INVITE carried (``X-Warmline-Ticket``, see :mod:`core.call_tickets`). A campaign's
call is the agent's when the ticket says so or when the attempt names them as its agent; an inbound
call has no attempt, so only its ticket (or the case the agent wrote on it) makes it theirs.

It lives in the hotline because it serves both: the hotline uses the dialer's campaigns, forms and
scripts; the dialer knows nothing of inbound lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.call_tickets import ticket_secret, verify
from core.i18n import _
from core.phones import mask, mask_in_text
from core.settings import Settings
from dialer.campaigns import spec_of
from dialer.forms import Form, check_answers
from dialer.models import Attempt, Campaign, Contact
from dialer.scripts import pop_fields, render_script
from dialer.wrapup import FormSaved, InvalidAnswers, form_draft, store_form
from hotline.cases import save_case
from hotline.config import InboundNumber, load_config
from hotline.models import Case


class DeskError(Exception):
    """A request about a call the agent cannot make; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class DeskCall:
    """One call as the agent's desk sees it."""

    call_ref: str
    agent: str
    campaign: str | None = None
    line: str | None = None
    script: str | None = None
    form: Form | None = None
    values: dict[str, str] = field(default_factory=dict)  # what the script's placeholders take
    shown: list[str] = field(default_factory=list)  # the list columns the screen pop shows
    attempt: Attempt | None = None
    case: Case | None = None


def open_call(
    session: Session, settings: Settings, call_ref: str, agent: str, ticket: str | None, now: datetime
) -> DeskCall:
    """The call, when it is the agent's; DeskError 403 (another's) or 404 (unknown) otherwise."""
    claims = verify(ticket_secret(settings.var_dir), ticket, call_ref=call_ref, agent=agent, now=now)
    attempt = session.get(Attempt, call_ref)
    if attempt is not None:
        owner = attempt.agent or (attempt.detail or {}).get("agent_name")
        if claims is None and owner != agent:
            raise DeskError(403, _("call {call} is not yours", call=call_ref))
        return _campaign_call(session, attempt, agent)
    case = session.scalar(select(Case).where(Case.call_ref == call_ref))
    line_name = claims.line if claims is not None else None
    if case is not None and (claims is not None or case.agent == agent):
        line_name = case.line
    if line_name is None:
        if ticket and claims is None:
            raise DeskError(403, _("the call's ticket is not valid for {agent}", agent=agent))
        raise DeskError(404, _("no call {call}", call=call_ref))
    return _line_call(settings, call_ref, agent, line_name, case)


def _campaign_call(session: Session, attempt: Attempt, agent: str) -> DeskCall:
    campaign = session.get(Campaign, attempt.campaign_id)
    contact = session.get(Contact, attempt.contact_id)
    if campaign is None or contact is None:
        raise DeskError(404, _("no call {call}", call=attempt.id))
    spec = spec_of(campaign)
    fields = {str(k): str(v) for k, v in (contact.fields or {}).items() if v not in (None, "")}
    values = {
        **fields,
        "name": contact.name or "",
        "phone": mask(contact.phone_e164),
        "campaign": campaign.name,
        "agent": agent,
    }
    return DeskCall(
        call_ref=attempt.id,
        agent=agent,
        campaign=campaign.name,
        script=spec.script,
        form=spec.form,
        values=values,
        shown=[f for f in pop_fields(spec.script, spec.screen_pop) if f in fields],
        attempt=attempt,
    )


def find_line(settings: Settings, name: str) -> InboundNumber | None:
    config = load_config(settings.inbound_config)
    return next((n for n in config.numbers.values() if n.name == name), None)


def _line_call(settings: Settings, call_ref: str, agent: str, name: str, case: Case | None) -> DeskCall:
    line = find_line(settings, name)
    return DeskCall(
        call_ref=call_ref,
        agent=agent,
        line=name,
        script=line.script if line else None,
        form=line.form if line else None,
        values={"line": name, "agent": agent},
        case=case,
    )


def script_view(call: DeskCall) -> dict[str, Any]:
    """What the softphone shows: the pop's fields, the script as safe HTML, the form and the
    answers saved so far."""
    rendered = render_script(call.script, call.values) if call.script else None
    if call.attempt is not None:
        answers = form_draft(call.attempt)
    elif call.case is not None:
        answers = dict(call.case.answers or {})
    else:
        answers = {}
    return {
        "call_ref": call.call_ref,
        "campaign": call.campaign,
        "line": call.line,
        "fields": {k: mask_in_text(call.values[k]) for k in call.shown},
        "script_html": rendered.html if rendered else None,
        "script_missing": rendered.missing if rendered else [],
        "form": call.form.public() if call.form else None,
        "answers": answers,
        "case_id": call.case.id if call.case is not None else None,
    }


@dataclass
class SavedForm:
    call_ref: str
    complete: bool
    stored: bool  # False: a draft the server does not keep (an inbound call's, until complete)
    answers: dict[str, Any]
    case_id: int | None = None


def save_form(
    session: Session, call: DeskCall, answers: dict[str, Any], *, complete: bool, now: datetime
) -> SavedForm:
    """Keep the call's form answers: a campaign call's on its attempt, an inbound call's complete
    form as a case. Raises InvalidAnswers naming the failing questions (a campaign call's answers
    that passed are then kept as its draft: the caller commits), DeskError 409 without a form."""
    if call.form is None:
        raise DeskError(409, _("this call has no form"))
    if call.attempt is not None:
        saved: FormSaved = store_form(
            session, call.attempt, call.form, answers, complete=complete, agent=call.agent, now=now
        )
        return SavedForm(call.call_ref, saved.complete, True, saved.answers)
    check = check_answers(call.form, answers, complete=complete)
    if not check.ok:
        raise InvalidAnswers(check)
    if not complete or call.form.record != "case" or call.line is None:
        return SavedForm(call.call_ref, False, False, check.clean)
    case = save_case(
        session, call_ref=call.call_ref, line=call.line, agent=call.agent, answers=check.clean, now=now
    )
    return SavedForm(call.call_ref, True, True, check.clean, case_id=case.id)
