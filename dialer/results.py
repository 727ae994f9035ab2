"""What became of each contact of a campaign: its state and outcome, and its latest wrap-up.

Read by `warmline campaign contacts NAME` and by the campaign export. A contact's wrap-up is the
latest one agents gave on its calls; its callback (time and agent) is that wrap-up's when it was a
callback, else none. Phone numbers, and numbers written into notes and answers, are masked unless
the caller asks for full numbers (and audits that).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from agents.transfer.models import Transfer
from core.i18n import _, ngettext
from core.phones import mask as mask_number
from core.phones import mask_in_text
from dialer.dispositions import DispositionAction
from dialer.models import Attempt, Campaign, Contact
from ivr.models import CallSurvey

CONTACT_KEYS = (
    "contact_id", "phone", "state", "outcome", "attempts", "disposition", "note", "callback_at",
    "callback_agent", "answers", "transfers",
)  # fmt: skip
TRANSFER_KEYS = ("kind", "target", "at", "outcome")


@dataclass(frozen=True)
class LatestWrapUp:
    """A contact's latest wrap-up, as the reports show it."""

    disposition: str
    note: str | None
    answers: dict[str, Any] = field(default_factory=dict)
    callback_at: datetime | None = None  # only when the wrap-up was a callback
    callback_agent: str | None = None


def latest_wrapups(session: Session, campaign_id: int) -> dict[int, LatestWrapUp]:
    """The latest wrap-up of every contact of the campaign that has one (by contact id), with the
    latest form answers given on its calls (saved with the wrap-up or with the form alone)."""
    stmt = (
        select(Attempt)
        .where(
            Attempt.campaign_id == campaign_id,
            or_(Attempt.wrapped_up_at.is_not(None), Attempt.answers.is_not(None)),
        )
        .order_by(Attempt.contact_id, Attempt.attempt_no)
    )
    out: dict[int, LatestWrapUp] = {}
    for attempt in session.scalars(stmt):
        before = out.get(attempt.contact_id)
        answers = dict(attempt.answers or {}) or (dict(before.answers) if before else {})
        if attempt.wrapped_up_at is None:
            if before is not None or answers:
                out[attempt.contact_id] = replace(before or LatestWrapUp("", None), answers=answers)
            continue
        action = ((attempt.detail or {}).get("wrapup") or {}).get("action")
        callback = action == DispositionAction.callback.value and attempt.callback_at is not None
        out[attempt.contact_id] = LatestWrapUp(  # later calls replace earlier ones
            disposition=attempt.disposition or "",
            note=attempt.note,
            answers=answers,
            callback_at=attempt.callback_at if callback else None,
            callback_agent=attempt.agent if callback else None,
        )
    return out


def latest_ivr_answers(session: Session, campaign_id: int) -> dict[int, dict[str, str]]:
    """The keys each contact last pressed at the IVR's questions (gather node -> entry), from the
    attempts whose flow stored them."""
    stmt = (
        select(Attempt.contact_id, Attempt.detail)
        .where(Attempt.campaign_id == campaign_id, Attempt.flow_outcome.is_not(None))
        .order_by(Attempt.contact_id, Attempt.attempt_no)
        .execution_options(yield_per=2000)
    )
    out: dict[int, dict[str, str]] = {}
    for contact_id, detail in session.execute(stmt):
        digits = ((detail or {}).get("flow") or {}).get("digits") or {}
        if isinstance(digits, dict) and digits:
            out[contact_id] = {str(k): str(v) for k, v in digits.items()}
    return out


def survey_scores(session: Session, campaign_id: int) -> dict[int, int]:
    """Each contact's latest post-call survey score (1-5), from the scores linked to its attempts."""
    stmt = (
        select(Attempt.contact_id, CallSurvey.score)
        .join(CallSurvey, CallSurvey.call_ref == Attempt.id)
        .where(Attempt.campaign_id == campaign_id)
        .order_by(Attempt.contact_id, Attempt.attempt_no)
    )
    return {contact_id: score for contact_id, score in session.execute(stmt)}


def contact_transfers(
    session: Session, campaign_id: int, *, mask: bool = True
) -> dict[int, list[tuple[Transfer, str]]]:
    """Every transfer or consult agents made on the campaign's calls, by contact id, oldest first:
    the row and the target as the reader may see it (an outside number masked unless `mask` is
    False; a colleague's name or a skill as it is)."""
    stmt = (
        select(Attempt.contact_id, Transfer)
        .join(Transfer, Transfer.call_ref == Attempt.id)
        .where(Attempt.campaign_id == campaign_id)
        .order_by(Attempt.contact_id, Transfer.requested_at, Transfer.id)
    )
    out: dict[int, list[tuple[Transfer, str]]] = {}
    for contact_id, row in session.execute(stmt):
        target = row.target
        if not mask and row.kind == "number" and row.number and any(ch.isdigit() for ch in row.number):
            target = row.number
        out.setdefault(contact_id, []).append((row, target))
    return out


def transfer_outcome(row: Transfer) -> str:
    """How a transfer ended (its result code), or its state while it is under way."""
    return row.result or row.state


def transfer_record(row: Transfer, target: str, zone: ZoneInfo) -> dict[str, Any]:
    """One transfer as `campaign contacts --json` shows it: exactly :data:`TRANSFER_KEYS`."""
    return {
        "kind": row.kind,
        "target": target,
        "at": _aware(row.requested_at).astimezone(zone).isoformat(),
        "outcome": transfer_outcome(row),
    }


def _aware(at: datetime) -> datetime:
    """A stored time (naive on SQLite) as UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def answer_keys(wrapups: dict[int, LatestWrapUp], form_keys: Sequence[str] = ()) -> list[str]:
    """One column per question: the form's in its order, then any other key answered."""
    keys: dict[str, None] = dict.fromkeys(form_keys)
    for wrapup in wrapups.values():
        keys.update(dict.fromkeys(wrapup.answers))
    return list(keys)


def masked_text(value: Any, mask: bool) -> Any:
    """Text with any phone number in it masked (when `mask`); other values as they are."""
    return mask_in_text(value) if mask and isinstance(value, str) else value


def contact_records(session: Session, campaign: Campaign, *, mask: bool = True) -> Iterator[dict[str, Any]]:
    """One record per contact with exactly :data:`CONTACT_KEYS`, in the order of the lists.

    `callback_at` and each transfer's `at` are ISO 8601 in the callee's time zone (with its
    offset); `transfers` lists every transfer or consult agents made on the contact's calls,
    oldest first (:data:`TRANSFER_KEYS`; `outcome` is the transfer's result code, or its state
    while under way)."""
    wrapups = latest_wrapups(session, campaign.id)
    transfers = contact_transfers(session, campaign.id, mask=mask)
    stmt = (
        select(Contact)
        .where(Contact.campaign_id == campaign.id)
        .order_by(Contact.import_id, Contact.row_number, Contact.id)
        .execution_options(yield_per=2000)
    )
    for (contact,) in session.execute(stmt):
        wrapup = wrapups.get(contact.id)
        zone = ZoneInfo(contact.timezone or campaign.timezone)
        callback_at = wrapup.callback_at if wrapup else None
        yield {
            "contact_id": contact.id,
            "phone": mask_number(contact.phone_e164) if mask else contact.phone_e164,
            "state": contact.state.value,
            "outcome": contact.last_outcome,
            "attempts": contact.attempts,
            "disposition": wrapup.disposition if wrapup else None,
            "note": masked_text(wrapup.note, mask) if wrapup else None,
            "callback_at": callback_at.astimezone(zone).isoformat() if callback_at else None,
            "callback_agent": wrapup.callback_agent if wrapup else None,
            "answers": {k: masked_text(v, mask) for k, v in wrapup.answers.items()} if wrapup else {},
            "transfers": [
                transfer_record(row, target, zone) for row, target in transfers.get(contact.id, ())
            ],
        }


def record_text(record: dict[str, Any]) -> str:
    """One contact on one line, for `campaign contacts` in a terminal (in the reader's language)."""
    text = _(
        "#{id} {phone}: {state}, outcome {outcome}, {attempts}",
        id=record["contact_id"],
        phone=record["phone"],
        state=record["state"],
        outcome=record["outcome"] or "-",
        attempts=ngettext("{n} attempt", "{n} attempts", record["attempts"]),
    )
    if record["disposition"]:
        text += _("; wrap-up {disposition}", disposition=record["disposition"])
    if record["callback_at"]:
        when = record["callback_at"][:16].replace("T", " ")
        if record["callback_agent"]:
            text += _(", callback {at} for {agent}", at=when, agent=record["callback_agent"])
        else:
            text += _(", callback {at} for anyone", at=when)
    if record["note"]:
        text += _("; note: {note}", note=record["note"])
    if record["answers"]:
        text += _("; answers: {answers}", answers=", ".join(f"{k}={v}" for k, v in record["answers"].items()))
    if record.get("transfers"):
        text += _("; transfers: {transfers}", transfers=", ".join(
            f"{t['kind']} {t['target']} ({t['outcome']})" for t in record["transfers"]
        ))  # fmt: skip
    return text
