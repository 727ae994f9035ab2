"""Console pages for campaigns: the list, a new-campaign form, one campaign with its list import
(preview, upload with progress, the report), imports and their reports.

Every page works without JavaScript (plain forms); campaigns.js adds the mapping preview and the
upload progress, announced through the page's live status region. Numbers on these pages are
masked; full rejected rows and exports are downloads, which are audited.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from agents.transfer.service import RESULTS, STATES
from core.auth.models import Role, User
from core.deps import DatabaseDep, Roles, SessionDep, SettingsDep
from core.formats import weekday
from core.i18n import N_, _, current_locale, name_of, ngettext
from core.phones import mask, mask_in_text
from dialer import campaigns as svc
from dialer import dnc
from dialer.api import imported_event
from dialer.campaigns import MODE_TEXT, CampaignError, SpecError
from dialer.dispositions import find as find_disposition
from dialer.events import CampaignStatusChanged, publish_from_thread
from dialer.lists.decode import ListFileError
from dialer.lists.mapping import parse_mapping
from dialer.lists.report import REASONS
from dialer.models import (
    CONTACT_STATE_NAMES,
    KIND_NAMES,
    STATUS_NAMES,
    Campaign,
    CampaignStatus,
    ListImport,
)
from dialer.outcomes import outcome_name
from dialer.results import contact_records
from dialer.schedule import DAYS
from dialer.staffing import check_staffing, report_staffing
from dialer.wake import wake
from warmline.console.pages import _section, render
from warmline.console.templating import written

router = APIRouter(include_in_schema=False)
SECTION = _section("/console/campaigns")
PageUser = Annotated[User, Depends(Roles(*SECTION.roles, page=True))]
ManagerPage = Annotated[User, Depends(Roles(Role.manager, page=True))]
STATUS_ACTIONS = {
    CampaignStatus.draft: [("running", N_("Start"))],
    CampaignStatus.running: [("paused", N_("Pause")), ("finished", N_("Finish"))],
    CampaignStatus.paused: [("running", N_("Resume")), ("finished", N_("Finish"))],
    CampaignStatus.finished: [],
}


def status_name(value: str) -> str:
    return name_of(STATUS_NAMES, value)


def kind_name(value: str) -> str:
    return name_of(KIND_NAMES, value)


def contact_state_name(value: str) -> str:
    return name_of(CONTACT_STATE_NAMES, value)


# The campaign pages name statuses, kinds, contact states and outcomes in the reader's language.
LABELS = {
    "status_name": status_name,
    "kind_name": kind_name,
    "contact_state_name": contact_state_name,
    "outcome_name": outcome_name,
}


def _can_manage(user: User) -> bool:
    return user.role in (Role.manager, Role.admin)


def _url(name: str) -> str:
    return "/console/campaigns/" + quote(name, safe="")


@router.get("/console/campaigns")
def campaigns_page(
    request: Request, session: SessionDep, user: PageUser, created: str | None = None
) -> HTMLResponse:
    return _list(
        request, session, user, status=_("Campaign {name} created.", name=created) if created else None
    )


def _list(
    request: Request, session: Any, user: User, *, status: str | None = None, error: str | None = None,
    form: dict[str, Any] | None = None, code: int = 200,
) -> HTMLResponse:  # fmt: skip
    counts = svc.contact_counts(session)
    rows = [
        {
            "name": c.name,
            "url": _url(c.name),
            "kind": c.kind.value,
            "status": c.status.value,
            "priority": c.priority,
            "elder_welfare": c.elder_welfare,
            "contacts": sum(counts.get(c.id, {}).values()),
            "pending": counts.get(c.id, {}).get("pending", 0),
        }
        for c in svc.list_campaigns(session)
    ]
    resp = render(
        request, "campaigns.html", _("Campaigns"), user, section=SECTION, campaigns=rows,
        can_manage=_can_manage(user), status=status, error=error, form=form or {}, **LABELS,
    )  # fmt: skip
    resp.status_code = code
    return resp


@router.post("/console/campaigns")
def create_campaign(
    request: Request,
    session: SessionDep,
    user: ManagerPage,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "agent",
    flow: Annotated[str, Form()] = "",
    elder_welfare: Annotated[str | None, Form()] = None,
    timezone: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "kind": kind, "flow": flow, "elder_welfare": bool(elder_welfare),
            "timezone": timezone, "description": description}  # fmt: skip
    data: dict[str, Any] = {"name": name.strip(), "kind": kind, "elder_welfare": bool(elder_welfare)}
    for key, value in (("flow", flow), ("timezone", timezone), ("description", description)):
        if value.strip():
            data[key] = value.strip()
    try:
        spec = svc.build_spec(data)
        svc.create_campaign(session, spec, actor=user.name)
    except SpecError as exc:
        return _list(request, session, user, error="; ".join(exc.problems), form=form, code=422)
    except CampaignError as exc:
        return _list(request, session, user, error=str(exc), form=form, code=422)
    return RedirectResponse(_url(spec.name) + "?created=1", status_code=303)


CONTACT_ROWS = 50  # contacts shown on the campaign's page; the export has them all
TRANSFER_KIND_NAMES = {
    "agent": N_("to a colleague"),
    "queue": N_("to a queue"),
    "number": N_("to an outside number"),
}


def transfer_text(transfer: dict[str, Any]) -> Markup:
    """What became of one transfer, in the reader's language (the agent's own words for it); a
    target named in Chinese inside an English page is marked so."""
    outcome = str(transfer["outcome"])
    msgid = RESULTS.get(outcome) or STATES.get(outcome) or RESULTS["error"]
    return escape(_(msgid)).format(target=written(transfer["target"]))


def _contact_rows(session: Any, campaign: Campaign) -> list[dict[str, Any]]:
    """The first contacts in the order of the lists, numbers masked, with their wrap-up's label."""
    spec = svc.spec_of(campaign)
    rows = []
    for record in islice(contact_records(session, campaign, mask=True), CONTACT_ROWS):
        chosen = find_disposition(spec.dispositions, record["disposition"] or "")
        label = ""
        if chosen is not None:
            label = chosen.label_en if current_locale() == "en" and chosen.label_en else chosen.label
        elif record["disposition"]:
            label = record["disposition"]
        rows.append({**record, "disposition_label": label})
    return rows


def _campaign_context(session: Any, name: str, user: User) -> dict[str, Any]:
    campaign = svc.require_campaign(session, name)
    info = svc.describe(session, campaign)
    info["windows_rows"] = [(weekday(i), info["windows"][d]) for i, d in enumerate(DAYS)]
    info["mode_text"] = _(MODE_TEXT.get(info["mode"], MODE_TEXT["broadcast"]))
    info["transfer_numbers_masked"] = [
        (label, mask(number) if any(ch.isdigit() for ch in str(number)) else str(number))
        for label, number in (info.get("transfer_numbers") or {}).items()
    ]
    actions = [
        (value, _(label))
        for value, label in STATUS_ACTIONS[campaign.status]
        if svc.may_change_status(user.role, campaign.status, CampaignStatus(value))
    ]
    return {
        "campaign": info,
        "url": _url(campaign.name),
        "actions": actions,
        "imports": info["imports"],
        "contact_rows": _contact_rows(session, campaign),
        "contact_rows_max": CONTACT_ROWS,
        "transfer_kind_name": lambda kind: name_of(TRANSFER_KIND_NAMES, kind),
        "transfer_text": transfer_text,
        **LABELS,
    }


@router.get("/console/campaigns/{name}")
def campaign_page(
    request: Request, name: str, session: SessionDep, settings: SettingsDep, user: PageUser,
    created: str | None = None, changed: str | None = None,
) -> HTMLResponse:  # fmt: skip
    try:
        ctx = _campaign_context(session, name, user)
    except CampaignError as exc:
        resp = render(
            request, "section.html", _("Campaign not found"), user, section=SECTION, status=str(exc)
        )
        resp.status_code = 404
        return resp
    status = None
    warnings: list[str] = []
    if created:
        status = _("Campaign {name} created as a draft. Import a list, then start it.", name=name)
    elif changed:
        status = _(
            "Campaign {name} is now {status}.", name=name, status=status_name(ctx["campaign"]["status"])
        )
        if ctx["campaign"]["status"] == CampaignStatus.running.value:
            campaign = svc.require_campaign(session, name)
            warnings = check_staffing(session, settings, campaign).warnings
    return render(
        request, "campaign.html", _("Campaign {name}", name=name), user, section=SECTION, status=status,
        can_manage=_can_manage(user), staffing_warnings=warnings, **ctx,
    )  # fmt: skip


@router.post("/console/campaigns/{name}/status")
def campaign_status(
    request: Request, name: str, session: SessionDep, settings: SettingsDep, user: PageUser,
    status: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    try:
        target = CampaignStatus(status)
        campaign = svc.set_status(session, name, target, actor=user.name, role=user.role)
        if target is CampaignStatus.running:  # the page it redirects to shows the warnings
            report_staffing(session, settings, campaign, actor=user.name)
        session.commit()
        wake()  # committed: a dialer worker here acts on it at its next pass, not its next read
        publish_from_thread(
            request.app.state, CampaignStatusChanged(campaign=name, status=target.value, by=user.name)
        )
    except (ValueError, CampaignError) as exc:
        session.rollback()
        if svc.get_campaign(session, name) is None:
            return campaign_page(request, name, session, settings, user)  # its "not found" page
        ctx = _campaign_context(session, name, user)
        resp = render(
            request, "campaign.html", _("Campaign {name}", name=name), user, section=SECTION, error=str(exc),
            can_manage=_can_manage(user), **ctx,
        )  # fmt: skip
        resp.status_code = 403 if isinstance(exc, svc.StatusNotYours) else 422
        return resp
    return RedirectResponse(_url(name) + "?changed=1", status_code=303)


@router.post("/console/campaigns/{name}/import")
def campaign_import(
    request: Request,
    name: str,
    db: DatabaseDep,
    settings: SettingsDep,
    user: ManagerPage,
    file: Annotated[UploadFile, File()],
    mapping: Annotated[str, Form()] = "",
    header_row: Annotated[str, Form()] = "",
    sheet: Annotated[str, Form()] = "",
    dnc_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """The form's target without JavaScript: import, then show the report page."""
    from dialer.lists.importer import import_list

    try:
        report = import_list(
            db, name, file.file, file.filename or "upload", actor=user.name, mapping=parse_mapping(mapping),
            sheet=sheet or None, header_row=int(header_row) if header_row.strip() else None,
            dnc_stream=dnc_file.file if dnc_file is not None and dnc_file.filename else None,
            dnc_name=dnc_file.filename if dnc_file is not None else None, region=settings.default_region,
        )  # fmt: skip
    except (ValueError, CampaignError, ListFileError) as exc:
        with db.session() as session:
            ctx = _campaign_context(session, name, user)
            resp = render(
                request, "campaign.html", _("Campaign {name}", name=name), user, section=SECTION,
                import_error=str(exc), can_manage=True, **ctx,
            )  # fmt: skip
        resp.status_code = 422
        return resp
    publish_from_thread(request.app.state, imported_event(report, user.name))
    return RedirectResponse(f"/console/imports/{report.import_id}", status_code=303)


@router.post("/console/campaigns/{name}/dnc")
def campaign_dnc(
    request: Request, name: str, session: SessionDep, user: PageUser, number: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    try:
        campaign = svc.require_campaign(session, name)
    except CampaignError:
        return RedirectResponse("/console/campaigns", status_code=303)
    result = dnc.add_numbers(
        session,
        [number],
        campaign=campaign,
        source=f"console:{user.name}",
        reason=reason or None,
        actor=user.name,
    )
    ctx = _campaign_context(session, name, user)
    if result.rejected:
        resp = render(
            request, "campaign.html", _("Campaign {name}", name=name), user, section=SECTION,
            can_manage=_can_manage(user), dnc_error=f"{mask_in_text(number)}: {result.rejects[0]['detail']}",
            dnc_number=number, **ctx,
        )  # fmt: skip
        resp.status_code = 422
        return resp
    shown = mask(dnc.normalise(number).e164)
    if result.already:
        said = _("{number} was already on this campaign's do-not-call list.", number=shown)
    else:
        said = _("{number} added to this campaign's do-not-call list.", number=shown)
    if result.contacts_cancelled:
        said += " " + ngettext(
            "{n} pending contact cancelled.", "{n} pending contacts cancelled.", result.contacts_cancelled
        )
    return render(
        request, "campaign.html", _("Campaign {name}", name=name), user, section=SECTION,
        can_manage=_can_manage(user), status=said, **ctx,
    )  # fmt: skip


@router.get("/console/imports/{import_id}")
def import_page(request: Request, import_id: int, session: SessionDep, user: PageUser) -> HTMLResponse:
    from dialer.lists.importer import iter_rejects

    job = session.get(ListImport, import_id)
    if job is None:
        resp = render(request, "section.html", _("Import not found"), user, section=SECTION,
                      status=_("No import #{id}.", id=import_id))  # fmt: skip
        resp.status_code = 404
        return resp
    campaign = session.get(Campaign, job.campaign_id)
    assert campaign is not None
    rejects = []
    for r in iter_rejects(session, import_id):
        rejects.append({**r.as_dict(), "value": mask_in_text(r.value)})
        if len(rejects) >= 100:
            break
    summary = svc.import_summary(job)
    reasons = sorted(summary["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
    status = (
        _("Import #{id} failed: {error}", id=job.id, error=job.error)
        if job.error
        else _(
            "Import #{id}: {accepted} accepted, {rejected} rejected, {skipped} skipped.",
            id=job.id,
            accepted=job.accepted,
            rejected=job.rejected,
            skipped=job.skipped,
        )
    )
    return render(
        request, "import_report.html", _("Import #{id}", id=job.id), user, section=SECTION, status=status,
        job=summary, mapping=job.mapping, reasons=[(k, n, _(REASONS[k]) if k in REASONS else k) for k, n in reasons],
        rejects=rejects,
        campaign_name=campaign.name, campaign_url=_url(campaign.name), can_manage=_can_manage(user),
    )  # fmt: skip
