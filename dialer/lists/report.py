"""The import report: every input row accounted for.

`rows` counts the data rows below the header (title rows above it and the header itself are
reported as `header_row`/`preamble_rows`); each is accepted, rejected with a reason code, or
skipped because it is blank, so `rows == accepted + rejected + skipped` always holds.
Row numbers are those a person sees in Excel or WPS: 1-based, counting the title rows, the header
and blank rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from core.i18n import N_, _
from dialer.lists.export import write_csv
from dialer.lists.phones import FORMULA, INVALID, MISSING, NOT_ALLOWED_COUNTRY, SCIENTIFIC

DUPLICATE = "duplicate"  # the same number earlier in the same file
DUPLICATE_IN_CAMPAIGN = "duplicate_in_campaign"  # already a contact of the campaign (an earlier import)
DNC = "dnc"  # on the global or the campaign's do-not-call list
INVALID_TIMEZONE = "invalid_timezone"

# What each reason code means, for a person (translate with `_()`); the code is for programs.
REASONS: dict[str, str] = {
    MISSING: N_("no number in the phone column"),
    INVALID: N_("not a phone number, or not a valid one"),
    FORMULA: N_("a formula instead of a number"),
    SCIENTIFIC: N_("a number in scientific notation that lost digits"),
    NOT_ALLOWED_COUNTRY: N_("a number of a country this campaign does not call"),
    DUPLICATE: N_("the same number earlier in this file"),
    DUPLICATE_IN_CAMPAIGN: N_("already in the campaign"),
    DNC: N_("on a do-not-call list"),
    INVALID_TIMEZONE: N_("an unknown time zone in the time-zone column"),
}

REJECT_HEADER = ("row", "line", "reason", "detail", "value")


@dataclass(frozen=True)
class Reject:
    row: int
    line: int | None
    reason: str
    detail: str
    value: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
            "value": self.value,
        }


@dataclass
class ImportReport:
    campaign: str
    file_name: str
    sha256: str
    size: int
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    header_row: int | None = None
    preamble_rows: int = 0
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    import_id: int | None = None
    already_imported: dict[str, Any] | None = None
    dnc_file: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)  # the first few, for a summary on screen
    seconds: float = 0.0

    SAMPLE = 50

    def reject(self, reject: Reject) -> None:
        self.rejected += 1
        self.reasons[reject.reason] += 1
        if len(self.rejects) < self.SAMPLE:
            self.rejects.append(reject)

    @property
    def balanced(self) -> bool:
        return self.rows == self.accepted + self.rejected + self.skipped

    def to_dict(self, *, mask_values: bool = False) -> dict[str, Any]:
        from core.phones import mask_in_text

        return {
            "import_id": self.import_id,
            "campaign": self.campaign,
            "file": self.file_name,
            "sha256": self.sha256,
            "size": self.size,
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "columns": self.columns,
            "header_row": self.header_row,
            "preamble_rows": self.preamble_rows,
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "reasons": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "already_imported": self.already_imported,
            "dnc_file": self.dnc_file,
            "warnings": self.warnings,
            "rejects_sample": [
                {**r.as_dict(), "value": mask_in_text(r.value) if mask_values else r.value}
                for r in self.rejects
            ],
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            _(
                "{file} → campaign {campaign} (import #{id})",
                file=self.file_name,
                campaign=self.campaign,
                id=self.import_id,
            ),
            "  "
            + _(
                "rows {rows}: accepted {accepted}, rejected {rejected}, skipped {skipped} (blank)",
                rows=self.rows,
                accepted=self.accepted,
                rejected=self.rejected,
                skipped=self.skipped,
            ),
        ]
        if self.header_row:
            lines.append(
                "  "
                + _(
                    "header in row {row}; columns: {columns}",
                    row=self.header_row,
                    columns=_columns_text(self.columns),
                )
            )
        for reason, n in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {n:>8}  {reason}: {_(REASONS[reason]) if reason in REASONS else reason}")
        if self.already_imported and self.accepted == 0:
            prev = self.already_imported
            lines.append(
                "  "
                + _(
                    "this file was already imported into {campaign} as import #{id} on {at}: nothing new was added",
                    campaign=self.campaign,
                    id=prev["import_id"],
                    at=prev["at"],
                )
            )
        lines.extend("  " + _("warning: {warning}", warning=w) for w in self.warnings)
        return "\n".join(lines)


def _columns_text(columns: dict[str, Any]) -> str:
    parts = [f"{k}={columns[k]}" for k in ("phone", "name", "timezone") if columns.get(k)]
    if columns.get("fields"):
        parts.append(_("kept: {fields}", fields=", ".join(columns["fields"])))
    return "; ".join(parts)


def write_rejects_csv(out: IO[str], rejects: Iterable[Reject]) -> int:
    return write_csv(out, REJECT_HEADER, ((r.row, r.line, r.reason, r.detail, r.value) for r in rejects))
