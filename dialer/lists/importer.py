"""A call list into a campaign: file → rows → columns → E.164 → checks → contacts, and a report.

The walk, for every row below the header:

1. blank → skipped;
2. the phone cell → E.164, or rejected (missing, formula, invalid, scientific_notation,
   not_allowed_country; see `phones`), and an unknown time zone → invalid_timezone;
3. per batch of 5,000: on a do-not-call list (global, the campaign's) → dnc; the same number in an
   earlier row of this file → duplicate; already a contact of the campaign → duplicate_in_campaign;
4. the rest are inserted.

The whole import is one transaction: a file that turns out to be broken halfway (a damaged
workbook, an unclosed quote) adds nothing, and the failure is recorded with its message. The file's
SHA-256 is kept: a second import of the same file adds nothing and the report says it was seen
before. Memory stays flat: rows stream from the file and only one batch is held at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.audit import audit
from core.db import Database, utcnow
from core.i18n import _
from core.phones import mask as mask_number
from core.phones import mask_in_text
from dialer.campaigns import require_campaign
from dialer.lists import decode, phones
from dialer.lists.bulk import ContactRow, RejectRow, bulk_for
from dialer.lists.decode import FileInfo, ListFileError
from dialer.lists.mapping import HEADER_SCAN_ROWS, SYNONYMS, Columns, find_columns, header_key, is_blank
from dialer.lists.readers import RowSource, RowTuple, open_rows
from dialer.lists.report import (
    DNC,
    DUPLICATE,
    DUPLICATE_IN_CAMPAIGN,
    INVALID_TIMEZONE,
    ImportReport,
    Reject,
)
from dialer.models import Campaign, DncCampaign, DncGlobal, ImportReject, ImportStatus, ListImport

BATCH = 5000
MAX_VALUE = 255
MAX_FIELD = 1000
Progress = Callable[[int, int], None]

_PHONE_HEADERS = frozenset(header_key(s) for s in SYNONYMS["phone"])
# A JSON string literal (C-accelerated); contact fields are built from these without a dict.
_quote: Callable[[str], str] = json.encoder.encode_basestring


@dataclass
class ListLayout:
    """An opened list: the file, its rows and the columns found in them."""

    info: FileInfo
    source: RowSource
    columns: Columns
    head: list[RowTuple]
    rest: Iterator[RowTuple]

    def rows(self) -> Iterator[RowTuple]:
        return chain(self.head, self.rest)

    def close(self) -> None:
        self.source.close()


def open_list(
    stream: BinaryIO,
    file_name: str,
    *,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
) -> ListLayout:
    """Identify, decode and lay out a list file, or raise ListFileError. Reads only its first rows."""
    info = decode.inspect(stream, file_name)
    source = open_rows(stream, info, sheet)
    try:
        rest = iter(source)
        head = list(islice(rest, HEADER_SCAN_ROWS))
        if not any(not is_blank(r[2]) for r in head):
            raise ListFileError(file_name, _("no data in the first {n} rows", n=HEADER_SCAN_ROWS))
        columns = find_columns(file_name, head, mapping, header_row)
    except BaseException:
        source.close()
        raise
    return ListLayout(info, source, columns, head, rest)


def import_list(
    db: Database,
    campaign_name: str,
    stream: BinaryIO,
    file_name: str,
    *,
    actor: str,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
    dnc_stream: BinaryIO | None = None,
    dnc_name: str | None = None,
    region: str = "CN",
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import a list into a campaign and return the report. Raises CampaignError for an unknown
    campaign and ListFileError for a file that cannot be read; in both cases nothing is added."""
    started = time.perf_counter()
    with db.session() as session:
        require_campaign(session, campaign_name)
    dnc_layout = None
    if dnc_stream is not None:
        dnc_layout = open_list(dnc_stream, dnc_name or "do-not-call file")
    try:
        layout = open_list(stream, file_name, mapping=mapping, sheet=sheet, header_row=header_row)
    except BaseException:
        if dnc_layout:
            dnc_layout.close()
        raise
    try:
        with db.session() as session:
            report = _run(session, campaign_name, layout, dnc_layout, actor, region, progress, batch_size)
    except Exception as exc:
        _record_failure(db, campaign_name, layout.info, actor, exc)
        raise
    finally:
        layout.close()
        if dnc_layout:
            dnc_layout.close()
    report.seconds = time.perf_counter() - started
    return report


def _record_failure(db: Database, campaign_name: str, info: FileInfo, actor: str, exc: Exception) -> None:
    """The import rolled back; keep a record that it was tried and why it failed."""
    message = exc.message if isinstance(exc, ListFileError) else f"{type(exc).__name__}: {exc}"
    try:
        with db.session() as session:
            campaign = require_campaign(session, campaign_name)
            session.add(
                ListImport(
                    campaign_id=campaign.id, file_name=info.name[:255], sha256=info.sha256, size_bytes=info.size,
                    file_format=info.format, encoding=info.encoding, status=ImportStatus.failed,
                    error=message[:2000], created_by=actor, finished_at=utcnow(),
                )
            )  # fmt: skip
            audit(session, actor, "list.import.fail", campaign_name, file=info.name, error=message[:500])
    except Exception:  # noqa: S110 - the original error is what matters; it is re-raised by the caller
        pass


def _run(
    session: Session,
    campaign_name: str,
    layout: ListLayout,
    dnc_layout: ListLayout | None,
    actor: str,
    region: str,
    progress: Progress | None,
    batch_size: int,
) -> ImportReport:
    campaign = require_campaign(session, campaign_name)
    info, cols, source = layout.info, layout.columns, layout.source
    report = ImportReport(
        campaign=campaign.name, file_name=info.name, sha256=info.sha256, size=info.size, format=info.format,
        encoding=decode.label(info.encoding) if info.encoding else None, delimiter=source.delimiter,
        sheet=source.sheet, columns=cols.describe(), header_row=cols.header_row,
    )  # fmt: skip
    if source.other_sheets:
        others = ", ".join(repr(s) for s in source.other_sheets)
        report.warnings.append(
            f"only sheet {source.sheet!r} was imported; the workbook also has {others}: import each with --sheet"
        )
    previous = session.scalar(
        select(ListImport)
        .where(
            ListImport.campaign_id == campaign.id,
            ListImport.sha256 == info.sha256,
            ListImport.status == ImportStatus.done,
        )
        .order_by(ListImport.id)
        .limit(1)
    )
    if previous is not None:
        report.already_imported = {
            "import_id": previous.id,
            "at": previous.started_at.strftime("%Y-%m-%d %H:%M UTC"),
            "by": previous.created_by,
            "accepted": previous.accepted,
        }
    job = ListImport(
        campaign_id=campaign.id, file_name=info.name[:255], sha256=info.sha256, size_bytes=info.size,
        file_format=info.format, encoding=info.encoding, sheet=source.sheet, header_row=cols.header_row,
        mapping=cols.describe(), status=ImportStatus.done, created_by=actor,
        field_names=[key for _, key in cols.extra],
    )  # fmt: skip
    session.add(job)
    session.flush()
    report.import_id = job.id
    if dnc_layout is not None:
        from dialer.dnc import import_layout

        dnc_report = import_layout(
            session, dnc_layout, campaign=campaign, actor=actor, source=f"list-import:{job.id}"
        )
        report.dnc_file = dnc_report.to_dict()

    importer = _Importer(session, campaign, job, cols, report, region, batch_size, progress, source)
    try:
        importer.run(layout.rows())
    finally:
        importer.io.close()

    job.rows, job.accepted, job.rejected, job.skipped = (
        report.rows,
        report.accepted,
        report.rejected,
        report.skipped,
    )
    job.reasons = dict(report.reasons)
    job.finished_at = utcnow()
    assert report.balanced, "every row must be accepted, rejected or skipped"
    audit(
        session, actor, "list.import", campaign.name, import_id=job.id, file=info.name, sha256=info.sha256,
        rows=report.rows, accepted=report.accepted, rejected=report.rejected, skipped=report.skipped,
    )  # fmt: skip
    return report


class _Importer:
    """The per-row loop. Kept lean: it runs a million times for a large list."""

    def __init__(
        self,
        session: Session,
        campaign: Campaign,
        job: ListImport,
        cols: Columns,
        report: ImportReport,
        region: str,
        batch_size: int,
        progress: Progress | None,
        source: RowSource,
    ) -> None:
        self.session = session
        self.job = job
        self.cols = cols
        self.report = report
        self.region = region
        self.allowed = frozenset(campaign.allowed_countries)
        self.batch_size = batch_size
        self.progress = progress
        self.source = source
        self.io = bulk_for(session, campaign.id, job.id, utcnow())
        self.has_global_dnc = bool(session.scalar(select(exists().select_from(DncGlobal))))
        self.has_campaign_dnc = bool(
            session.scalar(select(exists().where(DncCampaign.campaign_id == campaign.id)))
        )
        self.campaign_tz = campaign.timezone
        self.zones: dict[str, bool] = {}
        self.extension_key = '"extension":'
        # (phone, name, fields, tz, row, line, raw)
        self.pending: list[tuple[str, str | None, str, str | None, int, int | None, str]] = []
        self.rejects: list[RejectRow] = []

    def reject(self, row: int, line: int | None, reason: str, detail: str, value: str) -> None:
        value = value.replace("\x00", "")[:MAX_VALUE]
        self.report.reject(Reject(row, line, reason, detail[:MAX_VALUE], value))
        self.rejects.append((row, line, reason, detail[:MAX_VALUE], value))

    def run(self, rows: Iterator[RowTuple]) -> None:
        report = self.report
        cols = self.cols
        header = cols.header_row or 0
        phone_i, name_i, tz_i = cols.phone, cols.name, cols.timezone
        width = len(cols.headers)
        fast_ok = self.region == "CN" and "CN" in self.allowed
        mobile = phones._CN_MOBILE.fullmatch
        normalise = phones.normalise
        region, allowed = self.region, self.allowed
        pending = self.pending
        batch_size = self.batch_size
        quote = _quote
        keyed = self._keyed()
        campaign_tz = self.campaign_tz
        counted = skipped = 0
        for row, line, cells, formulas in rows:
            if row <= header:
                report.preamble_rows += 1
                continue
            counted += 1
            n = len(cells)
            raw = cells[phone_i] if phone_i < n else ""
            if fast_ok and len(raw) == 11 and raw.isdigit() and raw.isascii() and mobile(raw):
                e164 = "+86" + raw
                extension = None
                tz = None
            else:
                if is_blank(cells):
                    skipped += 1
                    continue
                if formulas is not None and phone_i in formulas:
                    self.reject(
                        row, line, phones.FORMULA, "a formula, not a number: the cell was not imported", raw
                    )
                    continue
                p = normalise(raw, region, allowed)
                if p.e164 is None:
                    detail = p.detail
                    if p.reason == phones.INVALID and header_key(raw) in _PHONE_HEADERS:
                        detail = "a repeated header row"
                    self.reject(row, line, p.reason or phones.INVALID, detail, raw)
                    continue
                e164, extension = p.e164, p.extension
                tz = phones.timezone_for(e164) if p.region != "CN" else None
            if tz_i is not None and tz_i < n and cells[tz_i].strip():
                zone = cells[tz_i].strip()
                if not self._zone_ok(zone):
                    self.reject(row, line, INVALID_TIMEZONE, f"unknown time zone {zone!r}", cells[tz_i])
                    continue
                tz = zone
            if tz == campaign_tz:
                tz = None
            name = cells[name_i].strip()[:128] or None if name_i is not None and name_i < n else None
            if n > width:  # a row wider than the header: keep the extra cells too
                self._wider(n)
                width, keyed = len(cols.headers), self._keyed()
            parts = [pre + quote(v[:MAX_FIELD]) for i, pre in keyed if i < n and (v := cells[i].strip())]
            if extension:
                parts.append(self.extension_key + quote(extension))
            fields_json = "{" + ",".join(parts) + "}" if parts else "{}"
            pending.append((e164, name, fields_json, tz, row, line, raw))
            if len(pending) >= batch_size:
                self.flush()
        report.rows, report.skipped = counted, skipped
        self.flush()

    def _keyed(self) -> list[tuple[int, str]]:
        """(column, '"key":') for each kept column; and where an extension goes."""
        keys = {key for _, key in self.cols.extra}
        self.extension_key = _quote("extension" if "extension" not in keys else "extension (分机)") + ":"
        return [(i, _quote(key) + ":") for i, key in self.cols.extra]

    def _wider(self, n: int) -> None:
        self.cols.with_width(n)
        self.report.columns = self.cols.describe()
        self.job.field_names = [key for _, key in self.cols.extra]

    def _zone_ok(self, zone: str) -> bool:
        ok = self.zones.get(zone)
        if ok is None:
            try:
                ZoneInfo(zone)
                ok = True
            except (ZoneInfoNotFoundError, ValueError):
                ok = False
            self.zones[zone] = ok
        return ok

    def flush(self) -> None:
        pending = self.pending
        if pending:
            self._classify(pending)
            pending.clear()
        if self.rejects:
            self.io.insert_rejects(self.rejects)
            self.rejects.clear()
        if self.progress is not None:
            self.progress(*self.source.progress())

    def _classify(self, batch: list[tuple[str, str | None, str, str | None, int, int | None, str]]) -> None:
        numbers = [b[0] for b in batch]
        dnc_global = self.io.dnc_global(numbers) if self.has_global_dnc else set()
        dnc_campaign = self.io.dnc_campaign(numbers) if self.has_campaign_dnc else set()
        existing = self.io.existing(numbers)
        if not (dnc_global or dnc_campaign or existing) and len(set(numbers)) == len(numbers):
            self._insert([b[:5] for b in batch], batch)  # the usual batch: nothing to refuse
            return
        job_id = self.job.id
        first: dict[str, int] = {}
        insert: list[ContactRow] = []
        for e164, name, fields, tz, row, line, raw in batch:
            if e164 in dnc_global:
                self.reject(row, line, DNC, "on the global do-not-call list", raw)
            elif e164 in dnc_campaign:
                self.reject(row, line, DNC, "on this campaign's do-not-call list", raw)
            elif e164 in first:
                self.reject(row, line, DUPLICATE, f"the same number as row {first[e164]}", raw)
            elif e164 in existing:
                imp, r = existing[e164]
                if imp == job_id:
                    self.reject(row, line, DUPLICATE, f"the same number as row {r}", raw)
                else:
                    where = f"import #{imp}, row {r}" if imp else "added earlier"
                    self.reject(row, line, DUPLICATE_IN_CAMPAIGN, f"already in the campaign ({where})", raw)
            else:
                first[e164] = row
                insert.append((e164, name, fields, tz, row))
        if insert:
            self._insert(insert, batch)

    def _insert(self, insert: list[ContactRow], batch: list[Any]) -> None:
        insert.sort()  # B-tree inserts in key order: fewer pages touched
        added = self.io.insert_contacts(insert)
        if added != len(insert):
            self._reconcile(insert, {b[4]: b for b in batch})
        else:
            self.report.accepted += added

    def _reconcile(self, inserted: list[ContactRow], by_row: dict[int, Any]) -> None:
        """Another import added some of these numbers between our check and our insert."""
        mine = self.io.existing([c[0] for c in inserted])
        for e164, _name, _fields, _tz, row in inserted:
            imp, _r = mine.get(e164, (None, None))
            if imp == self.job.id:
                self.report.accepted += 1
            else:
                b = by_row[row]
                self.reject(
                    row, b[5], DUPLICATE_IN_CAMPAIGN, "added by another import at the same time", b[6]
                )


def iter_rejects(session: Session, import_id: int) -> Iterator[Reject]:
    """Every rejected row of an import, in row order (streamed)."""
    stmt = (
        select(
            ImportReject.row_number,
            ImportReject.line,
            ImportReject.reason,
            ImportReject.detail,
            ImportReject.value,
        )
        .where(ImportReject.import_id == import_id)
        .order_by(ImportReject.row_number)
        .execution_options(yield_per=2000)
    )
    for row, line, reason, detail, value in session.execute(stmt):
        yield Reject(row, line, reason, detail, value)


def preview_list(
    stream: BinaryIO,
    file_name: str,
    *,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    header_row: int | None = None,
    region: str = "CN",
    allowed: frozenset[str] | None = frozenset({"CN"}),
    rows: int = 5,
    mask: bool = True,
) -> dict[str, Any]:
    """What the importer would make of a file, from its first rows: for the mapping preview."""
    from dialer.lists.mapping import column_letter

    layout = open_list(stream, file_name, mapping=mapping, sheet=sheet, header_row=header_row)
    try:
        cols = layout.columns
        header = cols.header_row or 0
        data = [r for r in layout.head if r[0] > header and not is_blank(r[2])][:rows]
        width = max([len(cols.headers), *(len(r[2]) for r in data)], default=0)
        cols.with_width(width)
        columns = []
        for i in range(width):
            columns.append(
                {
                    "index": i,
                    "letter": column_letter(i),
                    "header": cols.headers[i] if i < len(cols.headers) else "",
                    "field": cols.field_of(i),
                }
            )
        sample = []
        for row, _line, cells, formulas in data:
            raw = cells[cols.phone] if cols.phone < len(cells) else ""
            p = (
                phones.Phone(None, phones.FORMULA, "a formula")
                if formulas and cols.phone in formulas
                else phones.normalise(raw, region, allowed)
            )
            shown = [mask_in_text(c) if mask else c for c in cells] + [""] * (width - len(cells))
            sample.append(
                {
                    "row": row,
                    "cells": shown,
                    "phone": mask_number(p.e164) if mask else p.e164,
                    "reason": p.reason,
                    "detail": p.detail,
                }
            )
        info = layout.info
        return {
            "file": info.name,
            "size": info.size,
            "format": info.format,
            "encoding": decode.label(info.encoding) if info.encoding else None,
            "delimiter": layout.source.delimiter,
            "sheet": layout.source.sheet,
            "other_sheets": list(layout.source.other_sheets),
            "header_row": cols.header_row,
            "found_by": cols.found_by,
            "mapping": cols.describe(),
            "columns": columns,
            "rows": sample,
        }
    finally:
        layout.close()
