"""Case records (工单): what a 12345 call asks of another department, followed until closed.

An inbound line whose form says ``record: case`` (``config/inbound/hotline.yaml``) turns each
saved form into a case: :func:`save_case` creates it (one per call; saving again updates it, while
it is open). Its ``category``, ``summary``, ``department``, ``follow_up_date`` and ``status``
answers become columns; every answer is kept in ``answers``. A case whose status is ``closed``
leaves the supervisors' list; a supervisor (or the command line) closes one with
:func:`close_case`, written to the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit, note_ref
from core.i18n import _
from core.phones import mask_in_text
from dialer.forms import CASE_CLOSED, Form
from hotline.models import Case

CASE_KEYS = ("id", "call_ref", "line", "agent", "category", "summary", "department", "follow_up_on",
             "status", "answers", "created_at", "updated_at", "closed_at", "closed_by", "close_note",
             "labels", "overdue")  # fmt: skip


class CaseError(ValueError):
    """A case request that cannot be carried out; `status` is the HTTP answer."""

    status = 409


class CaseNotFound(CaseError):
    status = 404


class NotYourCase(CaseError):
    status = 403


def save_case(
    session: Session, *, call_ref: str, line: str, agent: str, answers: Mapping[str, Any], now: datetime
) -> Case:
    """Create or update the call's case from its form's (checked, complete) answers."""
    case = session.scalar(select(Case).where(Case.call_ref == call_ref))
    if case is not None and case.agent != agent:
        raise NotYourCase(_("case {id} was written by {agent}", id=case.id, agent=case.agent))
    if case is not None and case.closed_at is not None:
        raise CaseError(_("case {id} is closed; it can no longer change", id=case.id))
    created = case is None
    if case is None:
        case = Case(call_ref=call_ref, line=line, agent=agent, created_at=now)
        session.add(case)
    follow_up = answers.get("follow_up_date")
    case.category = str(answers["category"])
    case.summary = str(answers["summary"])
    case.department = str(answers["department"]) if answers.get("department") else None
    case.follow_up_on = date.fromisoformat(str(follow_up)) if follow_up else None
    case.status = str(answers["status"])
    case.answers = dict(answers)
    case.updated_at = now
    if case.status == CASE_CLOSED:
        case.closed_at, case.closed_by = now, agent
    session.flush()
    audit(
        session, agent, "case.create" if created else "case.update", str(case.id), call_ref=call_ref,
        line=line, status=case.status, department=case.department,
    )  # fmt: skip
    return case


def list_cases(session: Session, *, open_only: bool = False, limit: int = 500) -> list[Case]:
    """Cases with the follow-up due first (open ones), newest first among the rest."""
    stmt = select(Case)
    if open_only:
        stmt = stmt.where(Case.closed_at.is_(None))
    stmt = stmt.order_by(
        Case.closed_at.is_not(None), Case.follow_up_on.is_(None), Case.follow_up_on, Case.id.desc()
    )
    return list(session.scalars(stmt.limit(limit)))


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise CaseNotFound(_("no case {id}", id=case_id))
    return case


def close_case(session: Session, case_id: int, *, actor: str, now: datetime, note: str | None = None) -> Case:
    """Close a case (audited); closing one already closed is refused, saying by whom."""
    case = get_case(session, case_id)
    if case.closed_at is not None:
        raise CaseError(
            _("case {id} was closed by {who} on {at}", id=case.id, who=case.closed_by or "-",
              at=case.closed_at.strftime("%Y-%m-%d %H:%M"))
        )  # fmt: skip
    case.status = CASE_CLOSED
    case.closed_at, case.closed_by = now, actor
    case.close_note = (note or "").strip() or None
    case.updated_at = now
    # The note may name people: the log keeps a reference to it (core.audit.note_ref), not the text.
    ref = note_ref(session, case.close_note, f"case:{case.id}")
    audit(session, actor, "case.close", str(case.id), call_ref=case.call_ref, note=ref)
    return case


def describe(case: Case, *, form: Form | None, timezone: str, today: date) -> dict[str, Any]:
    """A case as the API, the console and the CLI show it: numbers in the text masked, the codes'
    labels from the line's form, times in the centre's zone."""
    zone = ZoneInfo(timezone)

    def local(at: datetime | None) -> str | None:
        return at.astimezone(zone).isoformat(timespec="minutes") if at else None

    return {
        "id": case.id,
        "call_ref": case.call_ref,
        "line": case.line,
        "agent": case.agent,
        "category": case.category,
        "summary": mask_in_text(case.summary),
        "department": case.department,
        "follow_up_on": case.follow_up_on.isoformat() if case.follow_up_on else None,
        "status": case.status,
        "answers": {k: mask_in_text(v) if isinstance(v, str) else v for k, v in (case.answers or {}).items()},
        "created_at": local(case.created_at),
        "updated_at": local(case.updated_at),
        "closed_at": local(case.closed_at),
        "closed_by": case.closed_by,
        "close_note": mask_in_text(case.close_note) if case.close_note else None,
        "labels": _labels(case, form),
        "overdue": bool(case.closed_at is None and case.follow_up_on and case.follow_up_on < today),
    }


def _labels(case: Case, form: Form | None) -> dict[str, str]:
    """The Chinese labels of the case's coded answers (category, department, status)."""
    out: dict[str, str] = {}
    if form is None:
        return out
    for key, value in (("category", case.category), ("department", case.department), ("status", case.status)):
        question = form.question(key)
        choice = next((c for c in question.choices if c.value == value), None) if question else None
        if choice is not None:
            out[key] = choice.label
    return out


def case_text(info: Mapping[str, Any]) -> str:
    """One case on one line, for `warmline cases list` in a terminal."""
    labels = info.get("labels") or {}
    parts = [
        f"#{info['id']}",
        f"[{labels.get('status', info['status'])}]",
        f"{labels.get('category', info['category'])}:",
        info["summary"][:60],
    ]
    if info["department"]:
        parts.append(_("→ {department}", department=labels.get("department", info["department"])))
    if info["follow_up_on"]:
        parts.append(_("follow up by {day}", day=info["follow_up_on"]))
    if info["overdue"]:
        parts.append(_("(overdue)"))
    parts.append(f"({info['line']}, {info['agent']})")
    return " ".join(parts)
