"""The recordings registry: register a finished call's file, play it back, keep it intact, purge it.

    rec = register_recording(session, settings, "/spool/x.wav", campaign_id=3, contact_id=17,
                             agent="li", started_at=t0, ended_at=t1, source="agent-bridge")

Registration reads the file (channels, rate, duration), checksums it, runs the acoustic analytics
(the figures and the per-side segments are stored on the row as JSON), then stores the file under
`recordings_dir/YYYY/MM/DD/<uuid>.wav` — encrypted at rest when `Settings.recordings_encrypt` is
on. A file already at its place in that layout (named by a UUID) is registered where it lies, and
the bridge's own row with that id, if there is one, is completed rather than duplicated.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import soundfile as sf
from sqlalchemy import JSON, column, select
from sqlalchemy import table as sa_table
from sqlalchemy.orm import Session

from core.audit import audit
from core.db import utcnow
from core.errors import CodedError
from core.i18n import _
from core.keyring import Keyring, load_keyring
from core.settings import Settings
from recordings import storage
from recordings.models import CallRecording, RecordingRetention, RecordingStatus

SYSTEM_ACTOR = "system"


class RecordingError(CodedError):
    """A recording that cannot be registered or read; the message says which and why (in the
    current locale), `code` for programs."""


def keyring(settings: Settings) -> Keyring:
    """The keyring recordings are encrypted with (created, 0600, on first use)."""
    return load_keyring(settings.keyring_path, var_dir=settings.var_dir)


def _key(settings: Settings) -> Keyring:
    return keyring(settings)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _audio_info(path: Path | BinaryIO, where: str) -> tuple[int, int, float]:
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise RecordingError(
            _("{where}: not a readable audio file ({error})", where=where, error=exc), code="not_audio"
        ) from exc
    return int(info.channels), int(info.samplerate), float(info.frames) / max(1, int(info.samplerate))


def register_recording(
    session: Session,
    settings: Settings,
    path: str | Path,
    *,
    campaign_id: int | None,
    contact_id: int | None,
    agent: str | None,
    started_at: datetime,
    campaign: str | None = None,
    elder_welfare: bool = False,
    ended_at: datetime | None,
    source: str,
    attempt_id: str | None = None,
    outcome: str | None = None,
    escalated: bool = False,
    move: bool = False,
    actor: str = SYSTEM_ACTOR,
    practice: bool = False,
) -> CallRecording:
    """Register a finished recording and return its row (added to `session`, not committed).

    The file is copied into the store (moved with `move=True`) unless it already lies at its
    place in the layout. Importing the same audio twice returns the first row; a file in place
    (a call's own, named by its id) is registered under that id whatever it sounds like.
    Raises RecordingError for a missing or unreadable file.
    """
    src = Path(path)
    where = str(src)
    if not src.is_file():
        raise RecordingError(_("{path}: no such file", path=where), code="no_such_file")
    channels, rate, duration = _audio_info(src, where)
    with src.open("rb") as f:
        checksum, size = storage.sha256_of(f)
    root = settings.recordings_dir.resolve()
    resolved = src.resolve()
    in_place = resolved.is_relative_to(root) and _is_uuid(resolved.name.removesuffix(".wav"))
    # A file in place is a call's own recording, named by its id: another call may sound the same
    # to the sample (a steady tone, a scripted callee, silence), so only an import is matched by content.
    if not in_place:
        same = session.scalars(
            select(CallRecording).where(
                CallRecording.sha256 == checksum, CallRecording.status != RecordingStatus.purged
            )
        ).first()
        if same is not None:
            return same

    rec_id = resolved.name.removesuffix(".wav") if in_place else str(uuid.uuid4())
    rec = session.get(CallRecording, rec_id) if in_place else None

    # Analytics first, on the plain file: a failure is kept on the row, never loses the recording.
    from recordings.analytics import AnalyticsError, analyze_file

    figures: dict[str, Any] | None = None
    analytics_error: str | None = None
    try:
        figures = analyze_file(src).model_dump(mode="json")
        figures["file"] = rec_id  # the stored row names no path
    except AnalyticsError as exc:
        analytics_error = str(exc)[:500]

    encrypt = settings.recordings_encrypt
    # A file already in the store keeps its folder (a recording recovered days later lies under
    # the day it was made); anything else is filed by its start.
    if in_place:
        rel = resolved.relative_to(root).as_posix() + (".enc" if encrypt else "")
    else:
        rel = storage.relative_path(rec_id, started_at, encrypt)
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if encrypt:
        storage.encrypt_file(src, dest, _key(settings))
        if move or in_place:
            src.unlink()
    elif resolved != dest:
        tmp = dest.with_name(dest.name + ".part")
        if move:
            shutil.move(str(src), tmp)
        else:
            shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    else:
        os.chmod(dest, 0o600)

    if rec is None:
        rec = CallRecording(id=rec_id)
        session.add(rec)
    rec.path = rel
    rec.campaign_id = campaign_id
    rec.campaign = campaign or rec.campaign
    rec.elder_welfare = elder_welfare or bool(rec.elder_welfare)
    rec.contact_id = contact_id
    rec.agent = agent
    rec.started_at = started_at
    rec.ended_at = ended_at or started_at + timedelta(seconds=duration)
    rec.channels = channels
    rec.source = source
    rec.attempt_id = attempt_id or rec.attempt_id
    rec.duration_s = round(duration, 3)
    rec.sample_rate = rate
    rec.size_bytes = size
    rec.stored_bytes = dest.stat().st_size
    rec.sha256 = checksum
    rec.encrypted = encrypt
    rec.status = RecordingStatus.ok
    rec.problem = None
    rec.registered_at = utcnow()
    rec.outcome = outcome or rec.outcome
    rec.escalated = escalated or bool(rec.escalated)
    rec.practice = practice or bool(rec.practice)
    rec.analytics = figures
    rec.analytics_error = analytics_error
    session.flush()
    audit(
        session,
        actor,
        "recording.register",
        rec_id,
        source=source,
        campaign_id=campaign_id,
        agent=agent,
        duration_s=rec.duration_s,
        encrypted=encrypt,
        practice=rec.practice,
    )
    return rec


def set_call_facts(
    session: Session, recording_id: str, *, outcome: str | None = None, escalated: bool | None = None
) -> CallRecording:
    """Record the call's outcome and welfare escalation once known (they feed QA's targeted rules)."""
    rec = get_recording(session, recording_id)
    if outcome is not None:
        rec.outcome = outcome
    if escalated is not None:
        rec.escalated = escalated
    return rec


def get_recording(session: Session, recording_id: str) -> CallRecording:
    rec = session.get(CallRecording, recording_id) if _is_uuid(recording_id) else None
    if rec is None:
        raise RecordingError(_("recording {id}: not found", id=recording_id), code="no_such_recording")
    return rec


def file_of(settings: Settings, rec: CallRecording) -> Path:
    return settings.recordings_dir.resolve() / rec.path


def open_recording(settings: Settings, rec: CallRecording) -> BinaryIO:
    """The recording's audio (decrypted on the fly when stored encrypted), seekable."""
    if rec.status is RecordingStatus.purged:
        raise RecordingError(
            _("recording {id}: purged at the end of its campaign's retention", id=rec.id), code="purged"
        )
    path = file_of(settings, rec)
    if not path.is_file():
        raise RecordingError(
            _("recording {id}: the file {path} is missing", id=rec.id, path=rec.path), code="file_missing"
        )
    try:
        return storage.open_audio(path, rec.encrypted, _key(settings) if rec.encrypted else None)
    except storage.StorageError as exc:
        raise RecordingError(_("recording {id}: {error}", id=rec.id, error=exc), code="unreadable") from exc


def analyze_stored(settings: Settings, rec: CallRecording) -> dict[str, Any]:
    """Run the acoustic analytics again on a stored recording, read through the decrypting reader
    (the plain audio never touches the disk)."""
    from recordings.analytics import AnalyticsError, analyze_file

    with open_recording(settings, rec) as f:
        try:
            figures = analyze_file(f, name=rec.id).model_dump(mode="json")
        except AnalyticsError as exc:
            raise RecordingError(str(exc), code="not_audio") from exc
    figures["file"] = rec.id
    return figures


# --- verify ---------------------------------------------------------------------------------


@dataclass
class Problem:
    recording_id: str
    path: str
    status: str  # missing | corrupt
    reason: str


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "missing": sum(p.status == "missing" for p in self.problems),
            "corrupt": sum(p.status == "corrupt" for p in self.problems),
            "problems": [asdict(p) for p in self.problems],
        }


def check_file(settings: Settings, rec: CallRecording) -> tuple[RecordingStatus, str | None]:
    """Whether the stored file is there and is what was registered."""
    path = file_of(settings, rec)
    if not path.is_file():
        return RecordingStatus.missing, f"{rec.path}: no such file"
    stored = path.stat().st_size
    if rec.stored_bytes is not None and stored != rec.stored_bytes:
        return RecordingStatus.corrupt, f"{rec.path}: {stored} bytes on disk, {rec.stored_bytes} registered"
    try:
        with storage.open_audio(path, rec.encrypted, _key(settings) if rec.encrypted else None) as f:
            checksum, size = storage.sha256_of(f)
            if rec.size_bytes is not None and size != rec.size_bytes:
                return (
                    RecordingStatus.corrupt,
                    f"{rec.path}: {size} bytes of audio, {rec.size_bytes} registered",
                )
            if rec.sha256 is not None and checksum != rec.sha256:
                return (
                    RecordingStatus.corrupt,
                    f"{rec.path}: checksum {checksum[:12]}… differs from the registered {rec.sha256[:12]}…",
                )
            f.seek(0)
            _audio_info(f, rec.path)
    except storage.StorageError as exc:
        return RecordingStatus.corrupt, str(exc)
    except RecordingError as exc:
        return RecordingStatus.corrupt, f"unreadable WAV: {exc}"
    return RecordingStatus.ok, None


def verify(session: Session, settings: Settings, actor: str = SYSTEM_ACTOR) -> VerifyReport:
    """Check every registered (not purged) recording; mark and report the missing and corrupt."""
    report = VerifyReport()
    now = utcnow()
    rows = session.scalars(
        select(CallRecording)
        .where(CallRecording.status != RecordingStatus.purged)
        .order_by(CallRecording.started_at, CallRecording.id)
    )
    for rec in rows:
        report.checked += 1
        status, reason = check_file(settings, rec)
        rec.status, rec.problem, rec.verified_at = status, reason, now
        if status is RecordingStatus.ok:
            report.ok += 1
        else:
            report.problems.append(Problem(rec.id, rec.path, status.value, reason or ""))
    d = report.to_dict()
    audit(
        session,
        actor,
        "recordings.verify",
        None,
        checked=d["checked"],
        missing=d["missing"],
        corrupt=d["corrupt"],
    )
    return report


# --- retention and purge --------------------------------------------------------------------


def set_retention(session: Session, campaign_id: int, days: int, actor: str) -> RecordingRetention:
    if days < 1:
        raise RecordingError(_("retention of {days} days: give at least 1", days=days), code="bad_retention")
    row = session.get(RecordingRetention, campaign_id)
    if row is None:
        row = RecordingRetention(campaign_id=campaign_id, retention_days=days, updated_by=actor)
        session.add(row)
    else:
        row.retention_days, row.updated_by = days, actor
    audit(session, actor, "recordings.retention", str(campaign_id), retention_days=days)
    return row


# The campaign's declared retention (its YAML's `retention: {purpose, recordings_days}`), read
# through the foreign key's table, not through the dialer's model (recordings sits below dialer).
_CAMPAIGNS = sa_table("campaigns", column("id"), column("retention", JSON))


@dataclass(frozen=True)
class Kept:
    days: int
    purpose: str | None


def retention_days(session: Session, settings: Settings) -> dict[int, int]:
    return {cid: kept.days for cid, kept in retention_rules(session).items()}


def retention_rules(session: Session) -> dict[int, Kept]:
    """Per campaign: how many days its recordings are kept and why. A retention set with
    `warmline recordings retention` overrides the days the campaign's YAML declared."""
    rules: dict[int, Kept] = {}
    for cid, declared in session.execute(select(_CAMPAIGNS.c.id, _CAMPAIGNS.c.retention)):
        if isinstance(declared, dict) and declared.get("recordings_days"):
            rules[int(cid)] = Kept(int(declared["recordings_days"]), declared.get("purpose"))
    for row in session.scalars(select(RecordingRetention)):
        old = rules.get(row.campaign_id)
        rules[row.campaign_id] = Kept(row.retention_days, old.purpose if old else None)
    return rules


@dataclass
class PurgeReport:
    dry_run: bool
    purged: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "count": len(self.purged), "recordings": self.purged}


def purge(
    session: Session, settings: Settings, *, dry_run: bool, actor: str, now: datetime | None = None
) -> PurgeReport:
    """Delete recordings older than their campaign's retention (the row stays, marked purged).

    A campaign without its own retention uses Settings.recordings_retention_days; without that,
    its recordings are kept. Each deletion is audited; a dry run is audited once, as a whole.
    """
    now = now or datetime.now(UTC)
    per_campaign = retention_rules(session)
    report = PurgeReport(dry_run)
    rows = session.scalars(
        select(CallRecording)
        .where(CallRecording.status != RecordingStatus.purged)
        .order_by(CallRecording.started_at, CallRecording.id)
    )
    for rec in rows:
        kept = per_campaign.get(rec.campaign_id) if rec.campaign_id is not None else None
        days = kept.days if kept is not None else settings.recordings_retention_days
        purpose = kept.purpose if kept is not None else None
        if days is None or rec.started_at > now - timedelta(days=days):
            continue
        entry = {
            "id": rec.id,
            "path": rec.path,
            "campaign_id": rec.campaign_id,
            "started_at": rec.started_at.isoformat(),
            "retention_days": days,
        }
        report.purged.append(entry)
        if dry_run:
            continue
        file_of(settings, rec).unlink(missing_ok=True)
        rec.status, rec.purged_at, rec.problem = RecordingStatus.purged, now, None
        audit(
            session, actor, "recording.purge", rec.id,
            retention_days=days, purpose=purpose, started_at=entry["started_at"],
        )  # fmt: skip
    if dry_run:
        audit(session, actor, "recordings.purge.dry_run", None, would_purge=len(report.purged))
    return report


def describe(rec: CallRecording) -> dict[str, Any]:
    """The row for people and the API (no path outside the store, no phone number)."""
    return {
        "id": rec.id,
        "campaign_id": rec.campaign_id,
        "contact_id": rec.contact_id,
        "agent": rec.agent,
        "started_at": rec.started_at.isoformat(),
        "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
        "duration_s": rec.duration_s,
        "channels": rec.channels,
        "sample_rate": rec.sample_rate,
        "size_bytes": rec.size_bytes,
        "sha256": rec.sha256,
        "encrypted": rec.encrypted,
        "source": rec.source,
        "practice": bool(rec.practice),
        "status": rec.status.value,
        "problem": rec.problem,
        "outcome": rec.outcome,
        "escalated": rec.escalated,
        "path": rec.path,
    }
