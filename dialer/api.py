"""Campaigns, call lists and do-not-call lists over HTTP.

Managers run campaigns: create and change them, upload lists, read reports, export results.
Supervisors watch them: read, pause/resume, export masked, add an opt-out to a campaign's list.
Who may do what: docs/security-roles.md.
Phone numbers in JSON are masked (138****8000); full numbers leave only through the audited
exports and the rejected-rows CSV, to managers.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from core.audit import audit
from core.auth.models import Role, User
from core.deps import DatabaseDep, Roles, SessionDep, SettingsDep
from core.downloads import attachment
from core.errors import http_error
from core.i18n import _
from core.phones import mask, mask_in_text
from dialer import campaigns as svc
from dialer import dnc, events
from dialer.campaigns import CampaignError, SpecError
from dialer.events import CampaignStatusChanged, ListImported
from dialer.lists.decode import ListFileError
from dialer.lists.mapping import parse_mapping
from dialer.lists.report import ImportReport
from dialer.models import CampaignStatus, Contact, ContactState, ListImport
from dialer.wake import wake

router = APIRouter(prefix="/api", tags=["campaigns"])

ManagerUser = Annotated[User, Depends(Roles(Role.manager))]
WatcherUser = Annotated[User, Depends(Roles(Role.manager, Role.supervisor))]
MAX_UPLOAD_BYTES = 512 << 20


def _http(exc: Exception) -> HTTPException:
    """The error as `{"detail": {"code", "message", ...}}` (core.errors), the code the campaign's
    error carries."""
    if isinstance(exc, SpecError):
        return http_error(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_campaign", str(exc), problems=exc.problems
        )
    if isinstance(exc, ListFileError):
        return http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_list_file", str(exc))
    message = str(exc)
    code = getattr(exc, "code", "campaign_refused")
    if code == "no_such_campaign":
        return http_error(status.HTTP_404_NOT_FOUND, code, message)
    if code == "campaign_exists":
        return http_error(status.HTTP_409_CONFLICT, code, message)
    return http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, code, message)


def _upload(file: UploadFile) -> Any:
    if file.size is not None and file.size > MAX_UPLOAD_BYTES:
        raise http_error(
            status.HTTP_413_CONTENT_TOO_LARGE,
            "too_large",
            _("{file}: larger than {most} MiB", file=file.filename, most=MAX_UPLOAD_BYTES >> 20),
        )
    return file.file


def imported_event(report: ImportReport, by: str) -> ListImported:
    assert report.import_id is not None
    return ListImported(
        campaign=report.campaign, import_id=report.import_id, rows=report.rows, accepted=report.accepted,
        rejected=report.rejected, skipped=report.skipped, by=by,
    )  # fmt: skip


def _mapping(text: str | None) -> dict[str, str]:
    try:
        return parse_mapping(text)
    except ValueError as exc:
        raise http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_mapping", str(exc)) from exc


# --- campaigns -----------------------------------------------------------------------------------


class CampaignRow(BaseModel):
    name: str
    kind: str
    mode: str
    status: str
    priority: int
    elder_welfare: bool
    contacts: int
    pending: int


class StatusChange(BaseModel):
    status: Literal["running", "paused", "finished"]


@router.get("/campaigns")
def list_campaigns(_: WatcherUser, session: SessionDep) -> list[CampaignRow]:
    counts = svc.contact_counts(session)
    return [
        CampaignRow(
            name=c.name,
            kind=c.kind.value,
            mode=c.mode.value,
            status=c.status.value,
            priority=c.priority,
            elder_welfare=c.elder_welfare,
            contacts=sum(counts.get(c.id, {}).values()),
            pending=counts.get(c.id, {}).get(ContactState.pending.value, 0),
        )
        for c in svc.list_campaigns(session)
    ]


@router.post("/campaigns", status_code=status.HTTP_201_CREATED)
def create_campaign(body: dict[str, Any], user: ManagerUser, session: SessionDep) -> dict[str, Any]:
    """Create a campaign from the same keys a YAML file has; only `name` is required."""
    try:
        spec = svc.build_spec(body)
        campaign = svc.create_campaign(session, spec, actor=user.name)
    except CampaignError as exc:
        raise _http(exc) from exc
    return svc.describe(session, campaign)


@router.get("/campaigns/{name}")
def show_campaign(name: str, _: WatcherUser, session: SessionDep) -> dict[str, Any]:
    try:
        return svc.describe(session, svc.require_campaign(session, name))
    except CampaignError as exc:
        raise _http(exc) from exc


@router.patch("/campaigns/{name}")
def update_campaign(
    name: str, body: dict[str, Any], user: ManagerUser, session: SessionDep
) -> dict[str, Any]:
    """Change some settings; the result is validated as a whole."""
    try:
        campaign = svc.update_campaign(session, name, body, actor=user.name)
    except CampaignError as exc:
        raise _http(exc) from exc
    return svc.describe(session, campaign)


@router.post("/campaigns/{name}/status")
async def change_status(
    name: str, body: StatusChange, user: WatcherUser, db: DatabaseDep, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Start, pause, resume or finish. Supervisors may pause a running campaign and resume a paused
    one; only managers start a draft or finish (403 `forbidden`).
    The new status is published (retained) on campaigns/{name}/status. Starting or resuming
    also answers ``warnings`` (and ``missing_skills``): the agent calls of the campaign's flow
    that no enabled agent can take (dialer.staffing); the campaign runs all the same."""
    from dialer.staffing import Staffing, report_staffing

    target = CampaignStatus(body.status)

    def change() -> tuple[str, Staffing | None]:
        with db.session() as session:
            campaign = svc.set_status(session, name, target, actor=user.name, role=user.role)
            staffing = None
            if target is CampaignStatus.running:
                staffing = report_staffing(session, settings, campaign, actor=user.name)
            return campaign.status.value, staffing

    try:
        now, staffing = await asyncio.to_thread(change)
    except svc.StatusNotYours as exc:
        raise http_error(status.HTTP_403_FORBIDDEN, "forbidden", str(exc)) from exc
    except CampaignError as exc:
        raise _http(exc) from exc
    wake()  # committed: a dialer worker here starts (or stops) at its next pass, not its next read
    message = CampaignStatusChanged(campaign=name, status=now, by=user.name)
    published = await events.publish(getattr(request.app.state, "bus", None), message)
    answer: dict[str, Any] = {"name": name, "status": now, "published": published}
    if staffing is not None:
        answer |= {"warnings": staffing.warnings, "missing_skills": staffing.missing_skills}
    return answer


# --- lists ---------------------------------------------------------------------------------------


@router.post("/campaigns/{name}/lists/preview")
def preview_list(
    name: str,
    _: ManagerUser,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV/TSV or XLSX")],
    mapping: Annotated[str | None, Form()] = None,
    sheet: Annotated[str | None, Form()] = None,
    header_row: Annotated[int | None, Form(ge=0)] = None,
) -> dict[str, Any]:
    """How the importer reads the file: encoding, header row, columns and the first rows (masked)."""
    from dialer.lists.importer import preview_list as preview

    try:
        campaign = svc.require_campaign(session, name)
        return preview(
            _upload(file), file.filename or "upload", mapping=_mapping(mapping), sheet=sheet or None,
            header_row=header_row, region=settings.default_region,
            allowed=frozenset(campaign.allowed_countries), rows=5, mask=True,
        )  # fmt: skip
    except (CampaignError, ListFileError) as exc:
        raise _http(exc) from exc


@router.post("/campaigns/{name}/lists", status_code=status.HTTP_201_CREATED)
def import_list(
    name: str,
    user: ManagerUser,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV/TSV or XLSX")],
    mapping: Annotated[str | None, Form()] = None,
    sheet: Annotated[str | None, Form()] = None,
    header_row: Annotated[int | None, Form(ge=0)] = None,
    dnc_file: Annotated[UploadFile | None, File(description="do-not-call numbers added first")] = None,
) -> dict[str, Any]:
    """Import a list: the report accounts for every row (rejected values masked; the full
    rejected rows are at /api/imports/{id}/rejects.csv)."""
    from dialer.lists.importer import import_list as run_import

    dnc_stream = _upload(dnc_file) if dnc_file is not None and dnc_file.filename else None
    try:
        report = run_import(
            db, name, _upload(file), file.filename or "upload", actor=user.name, mapping=_mapping(mapping),
            sheet=sheet or None, header_row=header_row, dnc_stream=dnc_stream,
            dnc_name=dnc_file.filename if dnc_file is not None else None, region=settings.default_region,
        )  # fmt: skip
    except (CampaignError, ListFileError) as exc:
        raise _http(exc) from exc
    events.publish_from_thread(request.app.state, imported_event(report, user.name))
    return report.to_dict(mask_values=True)


@router.get("/campaigns/{name}/imports")
def list_imports(name: str, _: WatcherUser, session: SessionDep) -> list[dict[str, Any]]:
    try:
        campaign = svc.require_campaign(session, name)
    except CampaignError as exc:
        raise _http(exc) from exc
    return [svc.import_summary(i) for i in svc.recent_imports(session, campaign, 200)]


def _job(session: Any, import_id: int) -> ListImport:
    job = session.get(ListImport, import_id)
    if job is None:
        raise http_error(status.HTTP_404_NOT_FOUND, "no_such_import", _("no import #{id}", id=import_id))
    assert isinstance(job, ListImport)
    return job


@router.get("/imports/{import_id}")
def show_import(import_id: int, _: WatcherUser, session: SessionDep) -> dict[str, Any]:
    from dialer.lists.importer import iter_rejects

    job = _job(session, import_id)
    sample = []
    for r in iter_rejects(session, import_id):
        sample.append({**r.as_dict(), "value": mask_in_text(r.value)})
        if len(sample) >= 50:
            break
    return {**svc.import_summary(job), "mapping": job.mapping, "rejects_sample": sample}


@router.get("/imports/{import_id}/rejects.csv")
def rejects_csv(import_id: int, user: ManagerUser, db: DatabaseDep) -> StreamingResponse:
    """Every rejected row with its row number, reason and the cell as it was (audited)."""
    from dialer.lists.importer import iter_rejects
    from dialer.lists.report import REJECT_HEADER

    with db.session() as session:
        job = _job(session, import_id)
        audit(session, user.name, "list.rejects.download", str(import_id), rejected=job.rejected)
        file_name = f"import-{import_id}-rejected.csv"

    def stream() -> Iterator[bytes]:
        from dialer.lists.export import write_csv

        buf = io.StringIO()
        with db.session() as session:
            rows = ((r.row, r.line, r.reason, r.detail, r.value) for r in iter_rejects(session, import_id))
            write_csv(buf, REJECT_HEADER, [])
            yield buf.getvalue().encode("utf-8")
            chunk: list[tuple[Any, ...]] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) >= 1000:
                    yield _csv_rows(chunk)
                    chunk = []
            if chunk:
                yield _csv_rows(chunk)

    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers=attachment(file_name),
    )


def _csv_rows(rows: list[tuple[Any, ...]]) -> bytes:
    import csv

    from dialer.lists.export import safe_text

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows([safe_text(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8")


class ContactOut(BaseModel):
    phone: str = Field(description="masked")
    name: str | None
    state: str
    attempts: int
    last_outcome: str | None
    next_due_at: str | None
    row: int | None
    assigned_agent: str | None = None  # a callback kept for this agent …
    assigned_until: str | None = None  # … until then; anyone with the skill after


@router.get("/campaigns/{name}/contacts")
def list_contacts(
    name: str,
    _: WatcherUser,
    session: SessionDep,
    state: ContactState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """One page of contacts, numbers masked."""
    try:
        campaign = svc.require_campaign(session, name)
    except CampaignError as exc:
        raise _http(exc) from exc
    where = [Contact.campaign_id == campaign.id]
    if state is not None:
        where.append(Contact.state == state)
    total = session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
    order = (Contact.import_id, Contact.row_number, Contact.id)  # in the order of the lists
    found = session.scalars(select(Contact).where(*where).order_by(*order).limit(limit).offset(offset))
    return {
        "total": total,
        "contacts": [
            ContactOut(
                phone=mask(c.phone_e164), name=c.name, state=c.state.value, attempts=c.attempts,
                last_outcome=c.last_outcome, next_due_at=c.next_due_at.isoformat() if c.next_due_at else None,
                row=c.row_number, assigned_agent=c.assigned_agent,
                assigned_until=c.assigned_until.isoformat() if c.assigned_until else None,
            ).model_dump()
            for c in found
        ],
    }  # fmt: skip


@router.get("/campaigns/{name}/export")
def export(
    name: str,
    user: WatcherUser,
    db: DatabaseDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    columns: Annotated[
        Literal["codes", "names"],
        Query(description="codes (for programs, the default) or names: titles in the reader's language"),
    ] = "codes",
) -> StreamingResponse:
    """Contacts and outcomes as CSV or XLSX. Managers get full numbers; supervisors masked ones.
    ``columns=names`` titles the columns in words (the list's own headers, the reader's language).
    Every export is written to the audit log."""
    from dialer.lists.export import export_contacts

    mask = user.role not in (Role.manager, Role.admin)
    names = columns == "names"
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - handed to the response
    try:
        with db.session() as session:
            campaign = svc.require_campaign(session, name)
            if format == "csv":
                text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
                export_contacts(
                    session, campaign, text, "csv", mask=mask, actor=user.name, via="api", names=names
                )
                text.flush()
                text.detach()
            else:
                export_contacts(
                    session, campaign, spool, "xlsx", mask=mask, actor=user.name, via="api", names=names
                )
    except CampaignError as exc:
        spool.close()
        raise _http(exc) from exc
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        try:
            while block := spool.read(1 << 16):
                yield block
        finally:
            spool.close()

    media = (
        "text/csv; charset=utf-8"
        if format == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return StreamingResponse(
        chunks(),
        media_type=media,
        headers=attachment(f"{name}-contacts.{format}"),
    )


# --- do-not-call ---------------------------------------------------------------------------------


class DncAdd(BaseModel):
    numbers: list[str] = Field(min_length=1, max_length=10000)
    campaign: str | None = None
    reason: str | None = Field(default=None, max_length=255)


@router.get("/dnc")
def list_dnc(
    user: WatcherUser,
    session: SessionDep,
    campaign: str | None = None,
    search: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """A do-not-call list (global, or `campaign`'s), newest first; masked for supervisors.

    `search`: managers find numbers by any part; a supervisor, who sees numbers masked, only by the
    whole number (is it listed?), so that searching digit by digit cannot reveal a masked one."""
    try:
        c = svc.require_campaign(session, campaign) if campaign else None
    except CampaignError as exc:
        raise _http(exc) from exc
    mask = user.role not in (Role.manager, Role.admin)
    if search and mask:
        whole = dnc.normalise(search)
        if whole.e164 is None:
            raise http_error(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "search_needs_whole_number",
                _("search: numbers are masked for you, so search by a whole phone number ({detail})",
                  detail=whole.detail),
            )  # fmt: skip
        search = whole.e164
    total, entries = dnc.list_entries(
        session, campaign=c, limit=limit, offset=offset, search=search, exact=mask
    )
    return {"total": total, "entries": [e.as_dict(mask=mask) for e in entries]}


@router.post("/dnc")
def add_dnc(body: DncAdd, user: WatcherUser, session: SessionDep) -> dict[str, Any]:
    """Put numbers on a do-not-call list; pending contacts with them are cancelled. The global list
    (no `campaign`) is a manager's: a supervisor adds to a campaign's list."""
    if body.campaign is None and user.role not in (Role.manager, Role.admin):
        raise http_error(
            status.HTTP_403_FORBIDDEN,
            "forbidden",
            _("only a manager may add to the global do-not-call list; name the campaign"),
        )
    try:
        c = svc.require_campaign(session, body.campaign) if body.campaign else None
    except CampaignError as exc:
        raise _http(exc) from exc
    result = dnc.add_numbers(
        session, body.numbers, campaign=c, source=f"api:{user.name}", reason=body.reason, actor=user.name
    )
    if result.rejected and not (result.added or result.already):
        raise http_error(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "no_valid_number", _("no valid number"), **result.to_dict()
        )
    return result.to_dict()


@router.delete("/dnc/{number}")
def remove_dnc(
    number: str, user: ManagerUser, session: SessionDep, campaign: str | None = None
) -> dict[str, Any]:
    try:
        c = svc.require_campaign(session, campaign) if campaign else None
        gone = dnc.remove_number(session, number, campaign=c, actor=user.name)
    except CampaignError as exc:
        raise _http(exc) from exc
    if not gone:
        where = campaign or _("global")
        raise http_error(
            status.HTTP_404_NOT_FOUND,
            "not_listed",
            _("{number} is not on the {where} list", number=mask_in_text(number), where=where),
        )
    return {"removed": True, "list": campaign or "global"}


@router.post("/dnc/import")
def import_dnc(
    user: ManagerUser,
    db: DatabaseDep,
    file: Annotated[UploadFile, File()],
    campaign: Annotated[str | None, Form()] = None,
    reason: Annotated[str | None, Form(max_length=255)] = None,
    mapping: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """A file of numbers onto the global list or a campaign's."""
    try:
        result = dnc.import_file(
            db, _upload(file), file.filename or "upload", campaign_name=campaign or None, actor=user.name,
            reason=reason, mapping=_mapping(mapping),
        )  # fmt: skip
    except (CampaignError, ListFileError) as exc:
        raise _http(exc) from exc
    out = result.to_dict()
    out["rejects_sample"] = [{**r, "value": mask_in_text(r["value"])} for r in out["rejects_sample"]]
    return out
