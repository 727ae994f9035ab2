"""`warmline campaign …`, `warmline lists …`, `warmline dnc …`: the dialer on the command line.

warmline campaign create NAME [--from FILE.yaml] [--kind agent|broadcast] [--mode MODE] [--flow F] [--elder-welfare]
warmline campaign show NAME [--json] | list | update NAME --from FILE | start|pause|resume|finish NAME
    (start and resume warn, on stderr and in --json "warnings", of agent calls nobody can take)
warmline lists import FILE --campaign NAME [--mapping phone=C,name=姓名] [--dnc FILE] [--report OUT.csv] [--json]
warmline lists preview FILE | imports --campaign NAME | report IMPORT_ID --out FILE
warmline lists export --campaign NAME --format csv|xlsx --out FILE
warmline dnc import FILE [--campaign NAME] | add PHONE… | remove PHONE | list
warmline campaign status NAME [--json]     live figures
warmline campaign contacts NAME [--full-numbers] [--json]   contacts and their wrap-ups
warmline dialer run [--campaign NAME]      the dialer worker (also inside `warmline up`)

The groups are registered by `dialer.plugin`; the database comes from the root command's
`core.cli.CliContext`, so this package never imports the root.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from core.cli import CLI_ACTOR, JsonOpt, cli_context, emit, fail, warn
from core.formats import date_time
from core.i18n import _, name_of
from dialer import campaigns as svc
from dialer import dnc
from dialer.campaigns import CampaignError
from dialer.lists.decode import ListFileError
from dialer.lists.mapping import parse_mapping
from dialer.models import STATUS_NAMES, CampaignKind, CampaignMode, CampaignStatus

campaign_app = typer.Typer(
    help="Campaigns: settings, calling windows, retries, status.", no_args_is_help=True
)
lists_app = typer.Typer(help="Call lists: import (CSV/XLSX), preview, reports, export.", no_args_is_help=True)
dnc_app = typer.Typer(help="Do-not-call lists: global and per campaign.", no_args_is_help=True)
dialer_app = typer.Typer(
    help="The dialer worker: places the calls of running campaigns.", no_args_is_help=True
)

PROGRESS_FROM_BYTES = 1 << 20
CampaignOpt = Annotated[str, typer.Option("--campaign", "-c", help="The campaign's name.")]


@contextmanager
def errors() -> Iterator[None]:
    """Turn the errors a person can cause into a message and exit code 2."""
    try:
        yield
    except ListFileError as exc:
        raise fail(str(exc)) from exc
    except CampaignError as exc:
        raise fail(str(exc)) from exc


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise fail(_("{path}: no such file", path=path)) from None
    except IsADirectoryError:
        raise fail(_("{path}: a folder, not a file", path=path)) from None
    except PermissionError:
        raise fail(_("{path}: not allowed to read it", path=path)) from None
    with f:
        yield f


class ProgressBar:
    """A plain bar on stderr for long imports; silent when stderr is not a terminal."""

    WIDTH = 30

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        frac = min(done / total, 1.0)
        filled = int(frac * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {frac:4.0%}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


# --- campaign ------------------------------------------------------------------------------------


@campaign_app.command("create")
def campaign_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The campaign's name (letters, digits, _ . -).")],
    from_file: Annotated[
        Path | None, typer.Option("--from", help="A YAML file of settings (see config/campaigns/).")
    ] = None,
    kind: Annotated[CampaignKind | None, typer.Option(help="agent or broadcast.")] = None,
    mode: Annotated[
        CampaignMode | None,
        typer.Option(
            help="broadcast (the dialer dials), preview (agents place the calls), progressive, predictive."
        ),
    ] = None,
    flow: Annotated[str | None, typer.Option(help="The IVR flow a broadcast plays.")] = None,
    elder_welfare: Annotated[
        bool | None,
        typer.Option("--elder-welfare/--no-elder-welfare", help="Daytime windows clear of meals and naps."),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="The callees' time zone (default Asia/Shanghai).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the campaign is for.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a campaign (a draft) from a YAML file, or with sensible defaults."""
    with errors():
        spec = svc.load_spec_file(from_file, name) if from_file else svc.build_spec({"name": name})
        overrides = {
            k: v
            for k, v in {
                "kind": kind, "mode": mode, "flow": flow, "elder_welfare": elder_welfare,
                "timezone": timezone, "description": description,
            }.items()
            if v is not None
        }  # fmt: skip
        if overrides:
            data = spec.public()
            if "elder_welfare" in overrides and not (from_file and "windows" in _yaml_keys(from_file)):
                data.pop("windows")
            spec = svc.build_spec({**data, **overrides})
        db = cli_context(ctx).database()
        with db.session() as session:
            campaign = svc.create_campaign(session, spec, actor=CLI_ACTOR)
            info = svc.describe(session, campaign)
    emit(info, as_json, _("created campaign {name} (draft)", name=name) + "\n" + svc.describe_text(info))


def _yaml_keys(path: Path) -> set[str]:
    data, _lines = svc.read_settings(path.read_text(encoding="utf-8-sig"), str(path))
    return set(data)


@campaign_app.command("show")
def campaign_show(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Show a campaign's settings, status, contacts and recent imports."""
    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            info = svc.describe(session, svc.require_campaign(session, name))
    emit(info, as_json, svc.describe_text(info))


@campaign_app.command("list")
def campaign_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List campaigns, highest priority first."""
    db = cli_context(ctx).database()
    with db.session() as session:
        found = svc.list_campaigns(session)
        counts = svc.contact_counts(session)
        rows = [
            {
                "name": c.name,
                "kind": c.kind.value,
                "mode": c.mode.value,
                "status": c.status.value,
                "priority": c.priority,
                "contacts": sum(counts.get(c.id, {}).values()),
                "pending": counts.get(c.id, {}).get("pending", 0),
            }
            for c in found
        ]
    lines = [
        f"{r['name']:<24} {r['kind']:<10} {r['mode']:<11} {r['status']:<9} "
        + _(
            "priority {priority}  {contacts} contacts, {pending} pending",
            priority=format(r["priority"], ">2"),
            contacts=r["contacts"],
            pending=r["pending"],
        )
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines) or _("no campaigns yet"))


@campaign_app.command("update")
def campaign_update(
    ctx: typer.Context,
    name: str,
    from_file: Annotated[Path, typer.Option("--from", help="A YAML file with the settings to change.")],
    as_json: JsonOpt = False,
) -> None:
    """Change settings from a YAML file (only the keys it has); the result is validated as a whole."""
    with errors():
        changes, lines = svc.read_settings_file(from_file)
        changes.pop("name", None)
        db = cli_context(ctx).database()
        with db.session() as session:
            campaign = svc.update_campaign(
                session, name, changes, actor=CLI_ACTOR, source=str(from_file), lines=lines
            )
            info = svc.describe(session, campaign)
    emit(info, as_json, _("updated campaign {name}", name=name) + "\n" + svc.describe_text(info))


def _status(ctx: typer.Context, name: str, status: CampaignStatus, as_json: bool) -> None:
    """Change the status; starting (or resuming) also says which agent calls nobody can take."""
    from dialer.staffing import report_staffing

    cli = cli_context(ctx)
    with errors():
        db = cli.database()
        with db.session() as session:
            campaign = svc.set_status(session, name, status, actor=CLI_ACTOR)
            data: dict[str, object] = {"name": campaign.name, "status": campaign.status.value}
            if status is CampaignStatus.running:
                staffing = report_staffing(session, cli.settings, campaign, actor=CLI_ACTOR)
                data |= {"warnings": staffing.warnings, "missing_skills": staffing.missing_skills}
                for warning in staffing.warnings:
                    warn(warning)
    emit(data, as_json, _("campaign {name}: {status}", name=name, status=name_of(STATUS_NAMES, status)))


@campaign_app.command("start")
def campaign_start(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Start dialling (draft → running)."""
    _status(ctx, name, CampaignStatus.running, as_json)


@campaign_app.command("pause")
def campaign_pause(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Stop placing new calls; calls in progress finish."""
    _status(ctx, name, CampaignStatus.paused, as_json)


@campaign_app.command("resume")
def campaign_resume(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Continue a paused campaign."""
    _status(ctx, name, CampaignStatus.running, as_json)


@campaign_app.command("finish")
def campaign_finish(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """End a campaign for good (its settings freeze; contacts and outcomes stay)."""
    _status(ctx, name, CampaignStatus.finished, as_json)


@campaign_app.command("status")
def campaign_status(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Live figures: dialled, answered, human/machine, confirmed, opted out, abandoned, remaining."""
    from dialer.stats import campaign_stats, stats_text

    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            stats = campaign_stats(session, svc.require_campaign(session, name))
    emit(stats, as_json, stats_text(stats))


@campaign_app.command("contacts")
def campaign_contacts(
    ctx: typer.Context,
    name: str,
    full_numbers: Annotated[
        bool,
        typer.Option(
            "--full-numbers",
            help="Show full phone numbers instead of 138****8000 (written to the audit log).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every contact of a campaign: state, outcome, attempts and the agents' latest wrap-up
    (disposition, note, callback, form answers). Numbers are masked unless --full-numbers."""
    from core.audit import audit
    from dialer.results import contact_records, record_text

    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            campaign = svc.require_campaign(session, name)
            records = list(contact_records(session, campaign, mask=not full_numbers))
            if full_numbers:
                # Whoever runs the command line administers the server; what they saw is still kept.
                audit(
                    session, CLI_ACTOR, "contacts.full_numbers", campaign.name, via="cli", rows=len(records)
                )
    text = "\n".join(record_text(r) for r in records) or _("no contacts in {name} yet", name=name)
    emit(records, as_json, text)


# --- the dialer worker ---------------------------------------------------------------------------


RECORDING_RECOVERY = "recording-recovery"  # registered by the recordings feature


@dialer_app.command("run")
def dialer_run(
    ctx: typer.Context,
    campaign: Annotated[
        list[str] | None, typer.Option("--campaign", "-c", help="Dial only this campaign (repeatable).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every ARI request.")] = False,
) -> None:
    """Run the dialer worker: places the calls of every running campaign until stopped (Ctrl-C,
    SIGTERM). Calls in flight when it stops are reconciled with Asterisk at the next start."""
    import asyncio
    import gc
    import logging
    import signal

    from core.bus import Bus
    from dialer.engine.serve import serve_dialer
    from dialer.welfare.events import serve_notifier

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    cli = cli_context(ctx)
    cli.database()  # migrated before the first call is placed

    async def main() -> None:
        # What the process made to start (modules, settings, the engine) lives as long as it does:
        # kept out of the collector's full passes, which would scan it again each time (about
        # 0.5 ms of CPU per trivial call on the fake bench, docs/faults.md Round 5).
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        async with Bus.from_settings(cli.settings, component="dialer") as bus:
            service = cli.service(bus)
            # What a process that places calls needs beside the dialer, even with no `warmline up`
            # running: its welfare alerts announced, recordings a crash left recovered.
            async with asyncio.TaskGroup() as workers:
                workers.create_task(serve_dialer(service, campaigns=set(campaign) if campaign else None))
                workers.create_task(serve_notifier(service))
                if RECORDING_RECOVERY in cli.workers:
                    workers.create_task(cli.workers[RECORDING_RECOVERY](service))

    try:
        asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        typer.echo(_("dialer stopped"), err=True)


# --- lists ---------------------------------------------------------------------------------------

MappingOpt = Annotated[
    str | None,
    typer.Option(
        "--mapping", help="Columns by header, letter or #position: phone=联系电话,name=B,timezone=#5"
    ),
]
SheetOpt = Annotated[
    str | None, typer.Option("--sheet", help="The worksheet of an XLSX (default: the first).")
]
HeaderRowOpt = Annotated[
    int | None, typer.Option("--header-row", min=0, help="The header's row number (0: the file has none).")
]


def _mapping(spec: str | None) -> dict[str, str]:
    try:
        return parse_mapping(spec)
    except ValueError as exc:
        raise fail(str(exc)) from exc


@lists_app.command("import")
def lists_import(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="The list: CSV/TSV (UTF-8, UTF-8 with BOM, GB18030/GBK) or XLSX.")
    ],
    campaign: CampaignOpt,
    mapping: MappingOpt = None,
    sheet: SheetOpt = None,
    header_row: HeaderRowOpt = None,
    dnc_file: Annotated[
        Path | None, typer.Option("--dnc", help="A do-not-call file added to the campaign's list first.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write every rejected row (row, reason, detail) to this CSV."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a call list into a campaign; every row is accepted or rejected with its reason."""
    from dialer.lists.importer import import_list, iter_rejects
    from dialer.lists.report import write_rejects_csv

    columns = _mapping(mapping)
    settings = cli_context(ctx).settings
    db = cli_context(ctx).database()
    size = file.stat().st_size if file.is_file() else 0
    bar = ProgressBar(
        _("importing {file}", file=file.name), sys.stderr.isatty() and size >= PROGRESS_FROM_BYTES
    )
    with errors(), open_binary(file) as stream:
        dnc_stream = dnc_file.open("rb") if dnc_file and dnc_file.is_file() else None
        if dnc_file and dnc_stream is None:
            raise fail(_("{path}: no such file", path=dnc_file))
        try:
            result = import_list(
                db, campaign, stream, file.name, actor=CLI_ACTOR, mapping=columns, sheet=sheet,
                header_row=header_row, dnc_stream=dnc_stream, dnc_name=dnc_file.name if dnc_file else None,
                region=settings.default_region, progress=bar,
            )  # fmt: skip
        finally:
            bar.close()
            if dnc_stream:
                dnc_stream.close()
    if report is not None and result.import_id is not None:
        with report.open("w", encoding="utf-8", newline="") as out, db.session() as session:
            write_rejects_csv(out, iter_rejects(session, result.import_id))
    data = result.to_dict()
    if report is not None:
        data["report_file"] = str(report)
    text = result.summary() + (
        "\n  " + _("rejected rows written to {path}", path=report) if report is not None else ""
    )
    emit(data, as_json, text)


@lists_app.command("preview")
def lists_preview(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The list file.")],
    mapping: MappingOpt = None,
    sheet: SheetOpt = None,
    header_row: HeaderRowOpt = None,
    rows: Annotated[int, typer.Option(min=1, max=50, help="How many data rows to show.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Show how a file would be read (encoding, header, columns, first rows; numbers masked)."""
    from dialer.lists.importer import preview_list

    with errors(), open_binary(file) as stream:
        preview = preview_list(
            stream, file.name, mapping=_mapping(mapping), sheet=sheet, header_row=header_row,
            region=cli_context(ctx).settings.default_region, allowed=None, rows=rows,
        )  # fmt: skip
    what = f"{preview['file']}: {preview['format']}"
    if preview["format"] == "csv":
        what += _(
            ", {encoding}, delimiter '{delimiter}'",
            encoding=preview["encoding"],
            delimiter=preview["delimiter"],
        )
    if preview["sheet"]:
        what += _(", sheet '{sheet}'", sheet=preview["sheet"])
    lines = [
        what,
        _(
            "header row: {row} (found by {how})",
            row=preview["header_row"] or _("none"),
            how=preview["found_by"],
        ),
        _(
            "columns: {columns}",
            columns=", ".join(
                f"{c['letter']} {c['header'] or '-'} → {c['field'] or '-'}" for c in preview["columns"]
            ),
        ),
    ]
    for r in preview["rows"]:
        verdict = r["phone"] if r["phone"] else f"{r['reason']}: {r['detail']}"
        lines.append(
            "  "
            + _(
                "row {row}: {cells}  ⇒ {verdict}", row=r["row"], cells=" | ".join(r["cells"]), verdict=verdict
            )
        )
    emit(preview, as_json, "\n".join(lines))


@lists_app.command("imports")
def lists_imports(ctx: typer.Context, campaign: CampaignOpt, as_json: JsonOpt = False) -> None:
    """The imports into a campaign, newest first."""
    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            c = svc.require_campaign(session, campaign)
            rows = [svc.import_summary(i) for i in svc.recent_imports(session, c, 1000)]
    tz = cli_context(ctx).settings.timezone
    lines = [
        f"#{r['id']:<5} {date_time(r['at'], tz)} {r['file']}: {r['status']}, "
        + _(
            "rows {rows}, accepted {accepted}, rejected {rejected}, skipped {skipped}",
            rows=r["rows"],
            accepted=r["accepted"],
            rejected=r["rejected"],
            skipped=r["skipped"],
        )
        + (f" — {r['error']}" if r["error"] else "")
        for r in rows
    ]
    emit(rows, as_json, "\n".join(lines) or _("no imports into {campaign} yet", campaign=campaign))


@lists_app.command("report")
def lists_report(
    ctx: typer.Context,
    import_id: Annotated[int, typer.Argument(help="The import's number (see `lists imports`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the rejected rows (CSV).")],
) -> None:
    """Write the rejected rows of an earlier import to a CSV file."""
    from core.audit import audit
    from dialer.lists.importer import iter_rejects
    from dialer.lists.report import write_rejects_csv
    from dialer.models import ListImport

    db = cli_context(ctx).database()
    with db.session() as session:
        job = session.get(ListImport, import_id)
        if job is None:
            raise fail(_("no import #{id}", id=import_id))
        with out.open("w", encoding="utf-8", newline="") as f:
            n = write_rejects_csv(f, iter_rejects(session, import_id))
        audit(session, CLI_ACTOR, "list.rejects.download", str(import_id), rows=n)
    typer.echo(_("{n} rejected rows of import #{id} written to {path}", n=n, id=import_id, path=out))


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


@lists_app.command("export")
def lists_export(
    ctx: typer.Context,
    campaign: CampaignOpt,
    out: Annotated[Path, typer.Option("--out", help="The file to write.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or xlsx.")] = ExportFormat.csv,
    masked: Annotated[bool, typer.Option("--masked", help="Mask phone numbers (138****8000).")] = False,
    column_names: Annotated[
        bool,
        typer.Option(
            "--column-names",
            help="Title the columns in words (the list's own headers, Chinese by default) instead of codes.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a campaign's contacts and their outcomes (safe to open in Excel). Audited."""
    from dialer.lists.export import export_contacts

    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            c = svc.require_campaign(session, campaign)
            if fmt is ExportFormat.csv:
                with out.open("w", encoding="utf-8", newline="") as f:
                    n = export_contacts(
                        session, c, f, "csv", mask=masked, actor=CLI_ACTOR, via="cli", names=column_names
                    )
            else:
                n = export_contacts(
                    session, c, out, "xlsx", mask=masked, actor=CLI_ACTOR, via="cli", names=column_names
                )
    emit(
        {"campaign": campaign, "format": fmt.value, "rows": n, "file": str(out), "masked": masked},
        as_json,
        _("{n} contacts of {campaign} written to {path}", n=n, campaign=campaign, path=out),
    )


# --- dnc -----------------------------------------------------------------------------------------

DncCampaignOpt = Annotated[
    str | None, typer.Option("--campaign", "-c", help="The campaign's own list (default: the global list).")
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept with each number).")]


def _dnc_list(campaign: str | None) -> str:
    return _("do-not-call list {campaign}", campaign=campaign) if campaign else _("global do-not-call list")


def _dnc_text(r: dnc.DncResult, where: str) -> str:
    text = _(
        "{where}: {added} added, {already} already listed, {rejected} rejected",
        where=where,
        added=r.added,
        already=r.already,
        rejected=r.rejected,
    )
    if r.skipped:
        text += _(", {n} blank rows", n=r.skipped)
    if r.contacts_cancelled:
        text += _("; {n} pending contacts cancelled", n=r.contacts_cancelled)
    for item in r.rejects[:20]:
        at = _("row {row}: ", row=item["row"]) if item["row"] else ""
        text += f"\n  {at}{item['reason']}: {item['detail']} ({item['value']})"
    return text


@dnc_app.command("import")
def dnc_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV/XLSX with a phone column (or only numbers).")],
    campaign: DncCampaignOpt = None,
    reason: ReasonOpt = None,
    mapping: MappingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add every number of a file to the global do-not-call list or a campaign's."""
    db = cli_context(ctx).database()
    with errors(), open_binary(file) as stream:
        r = dnc.import_file(
            db,
            stream,
            file.name,
            campaign_name=campaign,
            actor=CLI_ACTOR,
            reason=reason,
            mapping=_mapping(mapping),
        )
    emit(r.to_dict(), as_json, _dnc_text(r, _dnc_list(campaign)))


@dnc_app.command("add")
def dnc_add(
    ctx: typer.Context,
    numbers: Annotated[list[str], typer.Argument(help="Numbers as people write them.")],
    campaign: DncCampaignOpt = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put numbers on the global do-not-call list or a campaign's."""
    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            c = svc.require_campaign(session, campaign) if campaign else None
            r = dnc.add_numbers(session, numbers, campaign=c, source="cli", reason=reason, actor=CLI_ACTOR)
    emit(r.to_dict(), as_json, _dnc_text(r, f"do-not-call list {campaign or 'global'}"))
    if r.rejected and not r.added and not r.already:
        raise typer.Exit(2)


@dnc_app.command("remove")
def dnc_remove(
    ctx: typer.Context, number: str, campaign: DncCampaignOpt = None, as_json: JsonOpt = False
) -> None:
    """Take a number off a do-not-call list."""
    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            c = svc.require_campaign(session, campaign) if campaign else None
            gone = dnc.remove_number(session, number, campaign=c, actor=CLI_ACTOR)
    where = campaign or "global"
    named = campaign or _("global")
    said = (
        _("{number}: removed from {where} list", number=number, where=named)
        if gone
        else _("{number}: not on {where} list", number=number, where=named)
    )
    emit({"removed": gone, "list": where}, as_json, said)
    if not gone:
        raise typer.Exit(1)


@dnc_app.command("list")
def dnc_list(
    ctx: typer.Context,
    campaign: DncCampaignOpt = None,
    search: Annotated[str | None, typer.Option(help="Digits the number contains.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List a do-not-call list, newest first."""
    with errors():
        db = cli_context(ctx).database()
        with db.session() as session:
            c = svc.require_campaign(session, campaign) if campaign else None
            total, entries = dnc.list_entries(session, campaign=c, limit=limit, offset=offset, search=search)
    rows = [e.as_dict() for e in entries]
    lines = [f"{r['phone']:<18} {r['added_at'][:16]}  {r['source']}  {r['reason'] or ''}" for r in rows]
    shown = _("{shown} of {total}", shown=len(rows), total=total) if total > len(rows) else f"{total}"
    head = _("{where}: {shown} numbers", where=_dnc_list(campaign), shown=shown)
    emit({"total": total, "entries": rows}, as_json, "\n".join([head, *lines]))
