"""Spreadsheets out: CSV and XLSX writers that cannot be turned into formula attacks.

A cell a spreadsheet would evaluate (it starts with = + - @, a tab or a carriage return) is written
with a leading apostrophe, the OWASP rule, so a name like `=HYPERLINK(...)` in an uploaded list
stays text when a manager opens the export. Two kinds of cell are left as they are because they
cannot be formulas and a prefix would spoil them: a valid E.164 number (`+8613800138000` must stay
dialable) and a plain number (`-3`, `+1.5`). In XLSX every cell is also written as a text cell, and
phone numbers with the text number format, so Excel never turns them into numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.i18n import N_, _, current_locale, localised
from core.phones import mask as mask_number
from dialer.models import Campaign, Contact, ListImport
from dialer.results import (
    LatestWrapUp,
    answer_keys,
    contact_transfers,
    latest_ivr_answers,
    latest_wrapups,
    masked_text,
    survey_scores,
    transfer_outcome,
)

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{5,14}")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def safe_text(value: Any) -> str:
    """The cell's text, neutralised if a spreadsheet would evaluate it."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(TRIGGERS) and not (_E164.fullmatch(text) or _NUMBER.fullmatch(text)):
        return "'" + text
    return text


def write_csv(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any]], *, bom: bool = True) -> int:
    """CSV for Excel: UTF-8 with a BOM (so Excel on Chinese Windows does not read it as GBK)."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_text(h) for h in header])
    n = 0
    for row in rows:
        writer.writerow([safe_text(v) for v in row])
        n += 1
    return n


def write_xlsx(
    path: Any,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    text_columns: Sequence[int] = (),
    sheet: str = "contacts",
) -> int:
    """XLSX in openpyxl's write-only (streaming) mode; every cell a text cell."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    text_cols = set(text_columns)
    bold = Font(bold=True)

    def cell(value: Any, col: int, head: bool = False) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value=safe_text(value))
        c.data_type = "s"  # a string, never a formula, whatever it starts with
        if col in text_cols:
            c.number_format = "@"
        if head:
            c.font = bold
        return c

    ws.append([cell(h, i, head=True) for i, h in enumerate(header)])
    n = 0
    for row in rows:
        ws.append([cell(v, i) for i, v in enumerate(row)])
        n += 1
    wb.save(path)
    return n


# --- a campaign's contacts and outcomes ------------------------------------------------------------

CONTACT_COLUMNS = (
    "phone", "name", "state", "attempts", "last_outcome", "last_attempt_at", "next_due_at", "timezone",
    "import", "row", "disposition", "note", "callback_at", "callback_agent", "transfer_count", "transfers",
)  # fmt: skip
ANSWER_PREFIX = "answer."  # form answers' columns: answer.<question key>, apart from the list's own
IVR_PREFIX = "ivr."  # keys pressed at the IVR's questions: ivr.<gather node>


# Column titles for people (`names=True`: `columns=names` in the API, `--column-names` in the CLI),
# in the reader's language; the phone and name columns keep the list's own header when it had one.
COLUMN_TITLES: dict[str, str] = {
    "phone": N_("Phone"),
    "name": N_("Name"),
    "state": N_("State"),
    "attempts": N_("Attempts"),
    "last_outcome": N_("Last outcome"),
    "last_attempt_at": N_("Last attempt ({zone})"),
    "next_due_at": N_("Next call due ({zone})"),
    "timezone": N_("Time zone"),
    "import": N_("Import"),
    "row": N_("Row"),
    "disposition": N_("Wrap-up"),
    "note": N_("Note"),
    "callback_at": N_("Callback at ({zone})"),
    "callback_agent": N_("Callback agent"),
    "transfer_count": N_("Number of transfers"),
    "transfers": N_("Transfers"),
    "extension": N_("Extension"),
    "survey": N_("Survey score (1-5)"),
}


def _list_header(label: Any) -> str | None:
    """The header the list gave a column, from an import's mapping (``C (联系电话)``)."""
    if not isinstance(label, str) or "(" not in label:
        return None
    inner = label.partition("(")[2].rpartition(")")[0].strip()
    return inner or None


def _titles(
    session: Session, campaign: Campaign, field_names: list[str], answers: list[str], ivr_keys: list[str]
) -> list[str]:
    """The header in words: catalogue titles, the list's own headers, the form's question labels."""
    zone = campaign.timezone
    titles = {
        key: _(msgid, zone=zone) if "{zone}" in msgid else _(msgid) for key, msgid in COLUMN_TITLES.items()
    }
    for mapping in session.scalars(
        select(ListImport.mapping).where(ListImport.campaign_id == campaign.id).order_by(ListImport.id)
    ):
        for key in ("phone", "name"):
            found = _list_header((mapping or {}).get(key))
            if found:
                titles[key] = found
    labels: dict[str, str] = {}
    for q in (campaign.form or {}).get("questions", []):
        label = q.get("label_en") if current_locale() == "en" and q.get("label_en") else q.get("label")
        if label:
            labels[str(q.get("key"))] = localised(label)
    header = [titles[k] for k in CONTACT_COLUMNS]
    header.extend(titles[n] if n == "extension" else n for n in field_names)
    header.extend(labels.get(k) or _("Answer: {key}", key=k) for k in answers)
    header.extend(_("Keypad: {node}", node=k) for k in ivr_keys)
    if campaign.survey:
        header.append(titles["survey"])
    seen: dict[str, int] = {}
    unique = []
    for title in header:  # a list field may share a title with one of ours
        seen[title] = seen.get(title, 0) + 1
        unique.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
    return unique


def contact_export_rows(
    session: Session, campaign: Campaign, *, mask: bool, names: bool = False
) -> tuple[list[str], Iterator[list[Any]]]:
    """The header and a stream of rows: one per contact, its outcome so far, the agents' latest
    wrap-up (disposition, note, callback time and agent), its list fields, then one
    ``answer.<key>`` column per form question answered in the campaign. ``transfer_count`` and
    ``transfers`` (``2026-12-03 10:05 agent lin answered; …``: when, kind, target, result) say
    what agents handed the contact's calls to, oldest first. Times are in the
    campaign's time zone (named in the header).

    `mask` (a supervisor's export) masks every personal column: the number (138****8000), the
    name (王**), and withholds (***) the note, every list field and every answer but a choice.
    `names` titles the columns for people (see :data:`COLUMN_TITLES`) instead of with codes."""
    zone = ZoneInfo(campaign.timezone)
    field_names: list[str] = []
    for listed in session.scalars(
        select(ListImport.field_names).where(ListImport.campaign_id == campaign.id).order_by(ListImport.id)
    ):
        field_names.extend(n for n in listed if n not in field_names)
    wrapups = latest_wrapups(session, campaign.id)
    transfers = contact_transfers(session, campaign.id, mask=mask)
    questions = (campaign.form or {}).get("questions", [])
    form_keys = [str(q.get("key")) for q in questions]
    choices = {str(q.get("key")): {str(c.get("value")) for c in q.get("choices") or []} for q in questions}
    answers = answer_keys(wrapups, form_keys)
    keypad = latest_ivr_answers(session, campaign.id)
    ivr_keys = list(dict.fromkeys(k for pressed in keypad.values() for k in pressed))
    header = [
        *CONTACT_COLUMNS[:5],
        f"last_attempt_at ({campaign.timezone})",
        f"next_due_at ({campaign.timezone})",
        *CONTACT_COLUMNS[7:12],
        f"callback_at ({campaign.timezone})",
        *CONTACT_COLUMNS[13:],
        *field_names,
    ]
    if "extension" not in field_names:  # set by the importer from "010-12345678转123"
        header.append("extension")
        field_names.append("extension")
    header.extend(ANSWER_PREFIX + key for key in answers)
    header.extend(IVR_PREFIX + key for key in ivr_keys)
    # The callee's post-call survey score (campaigns with `survey: true`), the latest call's.
    scores = survey_scores(session, campaign.id) if campaign.survey else None
    if scores is not None:
        header.append("survey")
    if names:
        header = _titles(session, campaign, field_names, answers, ivr_keys)

    def local(dt: datetime | None) -> str:
        return dt.astimezone(zone).strftime("%Y-%m-%d %H:%M") if dt else ""

    def rows() -> Iterator[list[Any]]:
        stmt = (
            select(Contact)
            .where(Contact.campaign_id == campaign.id)
            .order_by(Contact.import_id, Contact.row_number, Contact.id)  # in the order of the lists
            .execution_options(yield_per=2000)
        )
        hide = withheld if mask else _as_is
        for (c,) in session.execute(stmt):
            fields = c.fields or {}
            wrapup = wrapups.get(c.id) or NO_WRAPUP
            yield [
                mask_number(c.phone_e164) if mask else c.phone_e164,
                mask_name(c.name) if mask else c.name or "",
                c.state.value,
                c.attempts,
                c.last_outcome or "",
                local(c.last_attempt_at),
                local(c.next_due_at) if c.state.value == "pending" else "",
                c.timezone or "",
                c.import_id or "",
                c.row_number or "",
                wrapup.disposition,
                hide(wrapup.note or ""),
                local(wrapup.callback_at),
                wrapup.callback_agent or "",
                len(transfers.get(c.id, ())),
                "; ".join(
                    f"{local(row.requested_at)} {row.kind} {target} {transfer_outcome(row)}"
                    for row, target in transfers.get(c.id, ())
                ),
                *(hide(fields.get(n, "")) for n in field_names),
                *(_cell(answer_shown(wrapup.answers.get(k), choices.get(k), mask)) for k in answers),
                *(masked_text(keypad.get(c.id, {}).get(k, ""), mask) for k in ivr_keys),
                *([scores.get(c.id, "")] if scores is not None else []),
            ]

    return header, rows()


NO_WRAPUP = LatestWrapUp(disposition="", note=None)
WITHHELD = "***"


def mask_name(name: str | None) -> str:
    """A person's name in a masked export: its first character, the rest hidden (王** for 王秀英)."""
    return name[0] + "*" * max(2, len(name) - 1) if name else ""


def withheld(value: Any) -> str:
    """A personal cell in a masked export: that there was something, not what."""
    return "" if value in (None, "") else WITHHELD


def _as_is(value: Any) -> Any:
    return value


def answer_shown(value: Any, choices: set[str] | None, mask: bool) -> Any:
    """A form answer in an export. Masked: only the choices of choice questions and yes/no stay
    (what the call found, for supervision); typed text, numbers and dates -- ages, symptoms,
    addresses -- are withheld."""
    if not mask or value is None or isinstance(value, bool):
        return value
    return value if choices and str(value) in choices else withheld(value)


def _cell(value: Any) -> Any:
    """An answer as a cell: empty when unanswered, yes/no words kept as JSON writes them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def export_contacts(
    session: Session,
    campaign: Campaign,
    out: Any,
    fmt: str,
    *,
    mask: bool,
    actor: str,
    via: str,
    names: bool = False,
) -> int:
    """Write the campaign's contacts as CSV (`out` a text stream) or XLSX (`out` a path or binary
    stream) and audit it. Returns the number of contacts written. `names`: column titles in words."""
    header, rows = contact_export_rows(session, campaign, mask=mask, names=names)
    if fmt == "csv":
        n = write_csv(out, header, rows)
    elif fmt == "xlsx":
        n = write_xlsx(out, header, rows, text_columns=(0,))
    else:
        raise ValueError(f"unknown export format {fmt!r} (csv or xlsx)")
    audit(session, actor, "contacts.export", campaign.name, format=fmt, rows=n, masked=mask, via=via)
    return n
