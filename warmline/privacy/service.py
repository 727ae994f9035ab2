"""One citizen's data, found by their phone number: exported (the right of access) or erased (the
right to deletion, PIPL art. 45 and 47).

    found = find(session, "+8613800138000")
    data = export(session, settings, found, actor="cli")             # every record, as JSON
    counts = erase(session, settings, found, actor="cli", dry_run=False)

What is theirs: the contacts with that number in every campaign, the call attempts to those
contacts, the recordings of those calls (the files too), the answers agents wrote in forms about
those calls and in the cases of inbound calls from the number, the welfare alerts raised about
them, the comments they recorded after a post-call survey (``call_surveys.comment_recording``, an
IVR voice message; counted with the recordings; no transcript of them is ever made), and the notes
people wrote about any of those (``audit_notes``). A survey's score stays without its comment: it is
the agent's figure, and the call it belonged to is gone. Inbound call rows keep their
figures for staffing forecasts but lose the number.

Kept on purpose: do-not-call entries (erasing one would make the dialer call the person again,
against their own wish); the audit log, which records that an erasure happened and its counts,
never the number, the contacts or any id of what was erased.

This module sits in the composition root because a person's data spans features (dialer,
recordings, hotline), which never import one another for this.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.audit import AuditNote, audit, erase_notes
from core.errors import CodedError
from core.i18n import _
from core.settings import Settings
from dialer.lists.phones import normalise
from dialer.models import Attempt, Campaign, Contact, ImportReject, PreviewSkip
from dialer.welfare.models import Alert
from hotline.models import Case, InboundCallRecord
from ivr.models import CallSurvey
from recordings.at_rest import open_voice_message, voice_message_files
from recordings.models import CallRecording, RecordingStatus
from recordings.service import describe as describe_recording
from recordings.service import file_of, open_recording

KINDS = ("contacts", "attempts", "recordings", "form_answers", "alerts")


class PrivacyError(CodedError):
    code = "bad_phone"


def e164_of(text: str, region: str) -> str:
    """The number as stored (E.164), or PrivacyError saying why it is not one."""
    phone = normalise(text, region, allowed=None)
    if phone.e164 is None:
        raise PrivacyError(
            _("'{number}' is not a phone number ({why})", number=text, why=phone.detail or phone.reason)
        )
    return phone.e164


@dataclass
class Found:
    """Every record that holds the person's data (loaded, not yet changed)."""

    e164: str
    contacts: list[Contact] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    recordings: list[CallRecording] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    inbound: list[InboundCallRecord] = field(default_factory=list)
    skips: list[PreviewSkip] = field(default_factory=list)
    surveys: list[CallSurvey] = field(default_factory=list)  # their survey answers with a recorded comment

    def voice_messages(self) -> list[str]:
        """The names of the voice messages they left on an IVR: a hotline callback's message, a
        survey's recorded comment."""
        return [
            *(str(c.fields["message"]) for c in self.contacts if (c.fields or {}).get("message")),
            *(str(v.comment_recording) for v in self.surveys if v.comment_recording),
        ]

    @property
    def form_answers(self) -> int:
        """Forms filled in about the person: an attempt's wrap-up answers or note, a case."""
        return sum(1 for a in self.attempts if a.answers or a.note) + len(self.cases)

    def counts(self) -> dict[str, int]:
        return {
            "contacts": len(self.contacts),
            "attempts": len(self.attempts),
            "recordings": len(self.recordings) + len(self.voice_messages()),
            "form_answers": self.form_answers,
            "alerts": len(self.alerts),
        }

    def note_subjects(self) -> list[str]:
        return [
            *(f"contact:{c.id}" for c in self.contacts),
            *(f"alert:{a.id}" for a in self.alerts),
            *(f"case:{c.id}" for c in self.cases),
        ]


def find(session: Session, e164: str) -> Found:
    found = Found(e164)
    found.contacts = list(
        session.scalars(select(Contact).where(Contact.phone_e164 == e164).order_by(Contact.id))
    )
    ids = [c.id for c in found.contacts]
    if ids:
        found.attempts = list(
            session.scalars(select(Attempt).where(Attempt.contact_id.in_(ids)).order_by(Attempt.created_at))
        )
        found.skips = list(session.scalars(select(PreviewSkip).where(PreviewSkip.contact_id.in_(ids))))
    attempt_ids = [a.id for a in found.attempts]
    found.inbound = list(
        session.scalars(select(InboundCallRecord).where(InboundCallRecord.number.in_(_inbound_forms(e164))))
    )
    refs = attempt_ids + [i.channel_id for i in found.inbound]
    if refs:
        found.cases = list(session.scalars(select(Case).where(Case.call_ref.in_(refs)).order_by(Case.id)))
        found.surveys = list(
            session.scalars(
                select(CallSurvey)
                .where(CallSurvey.call_ref.in_(refs), CallSurvey.comment_recording.is_not(None))
                .order_by(CallSurvey.id)
            )
        )
    by_call = [CallRecording.contact_id.in_(ids)] if ids else []
    if attempt_ids:
        by_call.append(CallRecording.attempt_id.in_(attempt_ids))
    if by_call:
        found.recordings = list(
            session.scalars(select(CallRecording).where(or_(*by_call)).order_by(CallRecording.started_at))
        )
    by_alert = [Alert.contact_id.in_(ids)] if ids else []
    if attempt_ids:
        by_alert.append(Alert.attempt_id.in_(attempt_ids))
    if by_alert:
        found.alerts = list(session.scalars(select(Alert).where(or_(*by_alert)).order_by(Alert.id)))
    return found


def _inbound_forms(e164: str) -> list[str]:
    """The ways an inbound caller's number may have been stored (as Asterisk gave it)."""
    digits = e164.lstrip("+")
    forms = {e164, digits}
    if e164.startswith("+86"):
        national = e164[3:]
        forms |= {national, "0" + national, "0086" + national}
    return sorted(forms)


# --- export ---------------------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def export(session: Session, settings: Settings, found: Found, *, actor: str) -> dict[str, Any]:
    """Everything held about the person, for them (JSON); audited without the number."""
    campaigns = {c.id: c.name for c in session.scalars(select(Campaign))}
    notes = {
        n.subject: n.text
        for n in session.scalars(select(AuditNote).where(AuditNote.subject.in_(found.note_subjects())))
    }
    data: dict[str, Any] = {
        "phone": found.e164,
        "contacts": [
            {
                "campaign": campaigns.get(c.campaign_id), "name": c.name, "fields": c.fields, "state": c.state.value,
                "attempts": c.attempts, "last_outcome": c.last_outcome, "created_at": _iso(c.created_at),
                "note": notes.get(f"contact:{c.id}"),
            }
            for c in found.contacts
        ],
        "attempts": [
            {
                "id": a.id, "campaign": campaigns.get(a.campaign_id), "at": _iso(a.created_at),
                "answered_at": _iso(a.answered_at), "ended_at": _iso(a.ended_at), "outcome": a.outcome,
                "agent": a.agent, "disposition": a.disposition, "digits": a.digits,
            }
            for a in found.attempts
        ],
        "recordings": [describe_recording(r) for r in found.recordings],
        "form_answers": [
            *({"attempt": a.id, "answers": a.answers, "note": a.note} for a in found.attempts if a.answers or a.note),
            *({"case": c.id, "summary": c.summary, "answers": c.answers, "category": c.category,
               "created_at": _iso(c.created_at), "close_note": c.close_note} for c in found.cases),
        ],
        "alerts": [
            {
                "id": a.id, "kind": a.kind, "state": a.state.value, "campaign": a.campaign_name,
                "created_at": _iso(a.created_at), "resolution": a.resolution, "note": notes.get(f"alert:{a.id}"),
            }
            for a in found.alerts
        ],
        "inbound_calls": [
            {"line": i.line, "arrived_at": _iso(i.arrived_at), "outcome": i.outcome} for i in found.inbound
        ],
        "survey_comments": [
            {"score": v.score, "answered_at": _iso(v.answered_at), "comment": v.comment_recording}
            for v in found.surveys
        ],
    }  # fmt: skip
    audit(session, actor, "privacy.export", None, request=uuid.uuid4().hex[:12], **found.counts())
    return data


def export_audio(settings: Settings, found: Found, folder: Path) -> list[Path]:
    """The person's recordings as plain WAVs in ``folder`` (0600), read through the decrypting
    reader (recordings.service.open_recording)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for rec in found.recordings:
        if rec.status is RecordingStatus.purged:
            continue
        out = folder / f"{rec.id}.wav"
        with open_recording(settings, rec) as src, out.open("wb") as dst:
            out.chmod(0o600)
            while block := src.read(1 << 20):
                dst.write(block)
        written.append(out)
    for message in found.voice_messages():
        if not voice_message_files(settings, message):
            continue
        out = folder / f"{message}.wav"
        with open_voice_message(settings, message) as src, out.open("wb") as dst:
            out.chmod(0o600)
            while block := src.read(1 << 20):
                dst.write(block)
        written.append(out)
    return written


# --- erase ----------------------------------------------------------------------------------------


def erase(session: Session, settings: Settings, found: Found, *, actor: str, dry_run: bool) -> dict[str, int]:
    """Delete the person's records (not the do-not-call entries); counts per kind. One audit
    entry says an erasure happened, by whom, with the counts: no number, no ids."""
    counts = found.counts()
    if dry_run:
        audit(session, actor, "privacy.erase.dry_run", None)
        return counts
    notes = erase_notes(session, found.note_subjects())
    for message in found.voice_messages():
        for path in voice_message_files(settings, message):
            path.unlink(missing_ok=True)
    for survey in found.surveys:  # the score stays, the caller's voice goes
        survey.comment_recording = None
    for rec in found.recordings:
        file_of(settings, rec).unlink(missing_ok=True)
        session.delete(rec)
    for alert in found.alerts:
        session.delete(alert)
    for case in found.cases:
        session.delete(case)
    for skip in found.skips:
        session.delete(skip)
    for attempt in found.attempts:
        session.delete(attempt)
    session.flush()
    for contact in found.contacts:
        session.delete(contact)
    if found.inbound:  # the call's figures stay for forecasts; the number goes
        channels = [i.channel_id for i in found.inbound]
        session.execute(
            update(InboundCallRecord).where(InboundCallRecord.channel_id.in_(channels)).values(number="")
        )
    rejects = _erase_rejects(session, found.e164)
    session.flush()
    audit(
        session, actor, "privacy.erase", None, notes=notes, import_rejects=rejects,
        survey_comments=len(found.surveys), **counts,
    )  # fmt: skip
    return counts


def _erase_rejects(session: Session, e164: str) -> int:
    """Rejected list rows (kept to show the uploader what was wrong) that hold the number."""
    national = re.sub(r"^\+86", "", e164)
    q = delete(ImportReject).where(ImportReject.value.contains(national))
    result = session.execute(q)
    return int(getattr(result, "rowcount", 0) or 0)
