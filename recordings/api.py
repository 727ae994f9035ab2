"""Recordings over HTTP: the registry's rows and the audio itself, every playback audited.

GET /api/recordings                      qa, supervisor: the newest recordings they may hear
GET /api/recordings/{id}                 qa, supervisor, the call's own agent: the row and analytics

Who hears which recording (`audible`, docs/security-roles.md): QA the sampled ones and those
they reviewed; supervisors those of escalated calls; an agent their own; administrators all.
Any other is answered 404, as if it did not exist.
GET /api/recordings/{id}/audio           the WAV, streamed (HTTP range requests for seeking);
                                         ?download=1 sends it as an attachment

Auditing: a download is audited every time (`recording.download`). Playback is audited as
`recording.play` on the first request of a listening (no Range, or a range from byte 0) and on any
request when the same person has no `recording.play` of that recording in the last 10 minutes,
so seeking within one listening does not flood the log, and no listening goes unrecorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from core.audit import AuditEntry, audit
from core.auth.models import Role, User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.downloads import content_disposition
from core.errors import http_error
from core.i18n import _
from recordings import service, storage
from recordings.models import CallRecording
from recordings.qa.models import QaItem, QaReview

router = APIRouter(prefix="/api/recordings", tags=["recordings"])
Listener = Annotated[User, Depends(Roles(Role.qa, Role.supervisor, Role.agent))]
Staff = Annotated[User, Depends(Roles(Role.qa, Role.supervisor))]
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
PLAY_WINDOW = timedelta(minutes=10)


def audible(user: User) -> ColumnElement[bool]:
    """Which recordings `user` may list and hear (docs/security-roles.md): administrators all; QA
    reviewers those drawn into a QA sample (the queue every reviewer works from) or reviewed by
    them; supervisors those of escalated calls (a welfare alert they handle); an agent their own."""
    if user.role is Role.admin:
        return true()
    if user.role is Role.qa:
        sampled = select(QaItem.recording_id)
        reviewed = select(QaReview.recording_id).where(QaReview.reviewer == user.name)
        return or_(CallRecording.id.in_(sampled), CallRecording.id.in_(reviewed))
    if user.role is Role.supervisor:
        return CallRecording.escalated.is_(True)
    if user.role is Role.agent:
        return CallRecording.agent == user.name
    return false()


def recording_for(session: Session, recording_id: str, user: User) -> CallRecording:
    """The recording if `user` may hear it; else 404, as if it did not exist (its id tells nothing)."""
    try:
        rec = service.get_recording(session, recording_id)
    except service.RecordingError as exc:
        raise http_error(404, exc.code, exc.message) from exc
    allowed = select(CallRecording.id).where(CallRecording.id == rec.id, audible(user))
    if session.scalar(allowed) is None:
        raise http_error(404, "no_such_recording", _("recording {id}: not found", id=recording_id))
    return rec


@router.get("")
def list_recordings(
    session: SessionDep, user: Staff, agent: str | None = None, limit: int = Query(50, ge=1, le=500)
) -> list[dict[str, Any]]:
    """The newest recordings this user may hear."""
    q = select(CallRecording).where(audible(user)).order_by(CallRecording.started_at.desc()).limit(limit)
    if agent:
        q = q.where(CallRecording.agent == agent)
    return [service.describe(r) for r in session.scalars(q)]


@router.get("/{recording_id}")
def get_recording(recording_id: str, session: SessionDep, user: Listener) -> dict[str, Any]:
    rec = recording_for(session, recording_id, user)
    return {**service.describe(rec), "analytics": rec.analytics, "analytics_error": rec.analytics_error}


def _played_recently(session: Session, actor: str, recording_id: str) -> bool:
    since = utcnow() - PLAY_WINDOW
    q = select(AuditEntry.id).where(
        AuditEntry.actor == actor,
        AuditEntry.action == "recording.play",
        AuditEntry.target == recording_id,
        AuditEntry.at >= since,
    )
    return session.scalars(q.limit(1)).first() is not None


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    if not header:
        return None
    m = RANGE.match(header.strip())
    if m is None or (not m[1] and not m[2]):
        raise http_error(
            416, "bad_range", _("Range '{header}': only one 'bytes=start-end' range is served", header=header)
        )
    if m[1]:
        start, end = int(m[1]), int(m[2]) if m[2] else size - 1
    else:  # the last N bytes
        start, end = max(0, size - int(m[2])), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        error = http_error(
            416, "bad_range", _("Range '{header}' is outside the {size} bytes", header=header, size=size)
        )
        error.headers = {"Content-Range": f"bytes */{size}"}
        raise error
    return start, end


@router.get("/{recording_id}/audio")
def audio(
    recording_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Listener,
    download: bool = False,
) -> StreamingResponse:
    rec = recording_for(session, recording_id, user)
    try:
        f = service.open_recording(settings, rec)
    except service.RecordingError as exc:
        raise http_error(410 if exc.code == "purged" else 404, exc.code, exc.message) from exc
    try:
        size = f.seek(0, 2)
        rng = _parse_range(request.headers.get("range"), size)
    except BaseException:
        f.close()
        raise
    start, end = rng if rng is not None else (0, size - 1)
    detail = {"range": f"{start}-{end}", "role": user.role.value}
    if download:
        audit(session, user.name, "recording.download", rec.id, **detail)
    elif rng is None or start == 0 or not _played_recently(session, user.name, rec.id):
        audit(session, user.name, "recording.play", rec.id, **detail)

    def body() -> Iterator[bytes]:
        try:
            yield from storage.iter_range(f, start, end)
        finally:
            f.close()

    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Cache-Control": "no-store",
    }
    if rng is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if download:
        headers["Content-Disposition"] = content_disposition(f"{rec.id}.wav")
    return StreamingResponse(body(), status_code=206 if rng else 200, media_type="audio/wav", headers=headers)
