"""Which column holds the phone number, the name, the time zone; where the header row is.

Headers are matched by name in Chinese or English (手机号, 联系电话, 姓名, Phone, Mobile, Name …),
ignoring case, spaces, full-width forms and notes in brackets ("手机号码（必填）"). The header may
sit below title rows. A list without a recognisable header is read by content: the column whose
cells are phone numbers. An explicit mapping (`phone=联系电话,name=B`) names columns by header
text, by Excel letter or by 1-based position (`#3`). Every other column is kept, under its header
text, as a contact field for prompts and call scripts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.i18n import _
from dialer.lists.decode import ListFileError
from dialer.lists.phones import normalise

PHONE, NAME, TIMEZONE = "phone", "name", "timezone"
FIELDS = (PHONE, NAME, TIMEZONE)
HEADER_SCAN_ROWS = 30

# In order of preference: a mobile column beats a landline column when both are present.
# fmt: off
SYNONYMS: dict[str, tuple[str, ...]] = {
    PHONE: (
        "手机", "手机号", "手机号码", "移动电话", "手机电话", "电话", "电话号码", "联系电话", "联系方式",
        "联系号码", "号码", "固定电话", "座机", "座机号码", "固话", "家庭电话", "住宅电话",
        "mobile", "mobilephone", "mobilenumber", "mobileno", "cell", "cellphone", "cellnumber",
        "phone", "phonenumber", "phoneno", "tel", "telephone", "telno", "msisdn", "contactnumber",
        "contactphone", "number",
    ),
    NAME: (
        "姓名", "名字", "客户姓名", "客户名称", "老人姓名", "居民姓名", "户主姓名", "联系人", "名称",
        "name", "fullname", "contactname", "customername", "customer", "contact",
    ),
    TIMEZONE: ("时区", "timezone", "tz"),
}
# fmt: on
_INDEX = {syn: (f, i) for f, syns in SYNONYMS.items() for i, syn in enumerate(syns)}
_NOTES = re.compile(r"[（(\[【<《].*?[）)\]】>》]")
_NOISE = re.compile(r"[\s_\-:：*＊.#/\\'\"]+")


def header_key(text: str) -> str:
    """A header reduced for comparison: NFKC, lower case, no notes in brackets, no punctuation."""
    t = unicodedata.normalize("NFKC", text).strip().lower()
    t = _NOTES.sub("", t)
    return _NOISE.sub("", t)


def guess_field(header: str) -> str | None:
    hit = _INDEX.get(header_key(header))
    return hit[0] if hit else None


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def parse_mapping(spec: str | None) -> dict[str, str]:
    """`phone=联系电话,name=B` -> {"phone": "联系电话", "name": "B"}; raises ValueError saying why not."""
    if not spec or not spec.strip():
        return {}
    out: dict[str, str] = {}
    for part in re.split(r"[,，;；]", spec):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise ValueError(f"mapping {part.strip()!r}: write FIELD=COLUMN, e.g. phone=联系电话 or phone=C")
        if key not in FIELDS:
            raise ValueError(f"mapping {part.strip()!r}: unknown field {key!r} (fields: {', '.join(FIELDS)})")
        out[key] = value
    if out and PHONE not in out:
        raise ValueError("mapping: the phone column must be named (phone=...)")
    return out


@dataclass
class Columns:
    """The layout found in a list: header row, the column of each field, the kept columns."""

    header_row: int | None
    phone: int
    name: int | None = None
    timezone: int | None = None
    headers: list[str] = field(default_factory=list)
    # Columns kept as contact fields: (index, key).
    extra: list[tuple[int, str]] = field(default_factory=list)
    found_by: str = "header"  # header | content | mapping

    def label(self, index: int | None) -> str | None:
        if index is None:
            return None
        header = self.headers[index].strip() if index < len(self.headers) else ""
        return f"{column_letter(index)} ({header})" if header else column_letter(index)

    def describe(self) -> dict[str, Any]:
        return {
            "header_row": self.header_row,
            "found_by": self.found_by,
            "phone": self.label(self.phone),
            "name": self.label(self.name),
            "timezone": self.label(self.timezone),
            "fields": [key for _, key in self.extra],
        }

    def field_of(self, index: int) -> str:
        if index == self.phone:
            return PHONE
        if index == self.name:
            return NAME
        if index == self.timezone:
            return TIMEZONE
        return next((key for i, key in self.extra if i == index), "")

    def with_width(self, width: int) -> None:
        """Keep columns a data row has beyond the header as fields too ("column F")."""
        known = {self.phone, self.name, self.timezone, *(i for i, _ in self.extra)}
        for i in range(len(self.headers), width):
            if i not in known:
                self.extra.append((i, f"column {column_letter(i)}"))
        if width > len(self.headers):
            self.headers.extend([""] * (width - len(self.headers)))


Row = tuple[int, int | None, list[str], frozenset[int] | None]


def is_blank(cells: Sequence[str]) -> bool:
    return not any(c and not c.isspace() for c in cells)


def find_columns(
    name: str, rows: Sequence[Row], mapping: dict[str, str] | None = None, header_row: int | None = None
) -> Columns:
    """Find the header and the columns in the first rows of a list, or raise ListFileError."""
    mapping = mapping or {}
    header = _pick_header(name, rows, mapping, header_row)
    if mapping:
        hdr_no, headers = (header[0], list(header[2])) if header else (None, [])
        if header is None and header_row is None:  # columns named by position: find a header by content
            content = _by_content(rows)
            if content is not None:
                hdr_no, headers = content.header_row, content.headers
        cols = Columns(header_row=hdr_no, phone=-1, headers=headers, found_by="mapping")
        _apply_mapping(name, cols, mapping)
        return _finish(cols)
    if header is not None:
        named = _from_headers(name, header[0], list(header[2]), {})
        if named is not None:
            return _finish(named)
    content = _by_content([r for r in rows if header is None or r[0] > header[0]])
    if content is not None:
        if header is not None:
            content.header_row, content.headers = header[0], list(header[2])
            _guess_others(content)
        return _finish(content)
    looked = "、".join(SYNONYMS[PHONE][:8])
    raise ListFileError(
        name,
        _(
            "no phone column found: no header named like {looked}, Phone, Mobile… in the first {n} rows,"
            " and no column whose cells are phone numbers; name the column with a mapping, e.g. phone=C or"
            " phone=联系电话",
            looked=looked,
            n=HEADER_SCAN_ROWS,
        ),
    )


def _pick_header(
    name: str, rows: Sequence[Row], mapping: dict[str, str], header_row: int | None
) -> Row | None:
    if header_row is not None:
        if header_row == 0:
            return None
        for r in rows:
            if r[0] == header_row:
                return r
        raise ListFileError(
            name, _("header row {row} is not among the first {n} rows", row=header_row, n=len(rows))
        )
    named = [v for v in mapping.values() if not _is_position(v)]
    for r in rows:
        keys = {header_key(c) for c in r[2] if c}
        if named and all(header_key(v) in keys for v in named):
            return r
        if not named and any(_INDEX.get(k, ("",))[0] == PHONE for k in keys):
            return r
    return None


def _is_position(ref: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z]{1,3}|#?\d{1,3}", ref.strip()))


def _from_headers(name: str, row_no: int, headers: list[str], mapping: dict[str, str]) -> Columns | None:
    cols = Columns(header_row=row_no, phone=-1, headers=headers, found_by="mapping" if mapping else "header")
    if mapping:
        _apply_mapping(name, cols, mapping)
        return cols
    best: dict[str, tuple[int, int]] = {}
    for i, text in enumerate(headers):
        hit = _INDEX.get(header_key(text)) if text else None
        if hit and (hit[0] not in best or hit[1] < best[hit[0]][0]):
            best[hit[0]] = (hit[1], i)
    if PHONE not in best:
        return None
    cols.phone = best[PHONE][1]
    cols.name = best[NAME][1] if NAME in best else None
    cols.timezone = best[TIMEZONE][1] if TIMEZONE in best else None
    return cols


def _apply_mapping(name: str, cols: Columns, mapping: dict[str, str]) -> None:
    for fld, ref in mapping.items():
        setattr(cols, fld, _resolve(name, cols, fld, ref))


def _resolve(name: str, cols: Columns, fld: str, ref: str) -> int:
    ref = ref.strip()
    key = header_key(ref)
    for i, text in enumerate(cols.headers):
        if text and header_key(text) == key:
            return i
    if re.fullmatch(r"[A-Za-z]{1,3}", ref):
        return column_index(ref)
    if re.fullmatch(r"#?\d{1,3}", ref) and int(ref.lstrip("#")) >= 1:
        return int(ref.lstrip("#")) - 1
    where = (
        _("header row {row}", row=cols.header_row)
        if cols.header_row
        else _("the file (it has no header row)")
    )
    have = ", ".join(repr(h) for h in cols.headers if h) or _("none")
    raise ListFileError(
        name,
        _(
            "mapping {field}={ref}: no column named '{ref}' in {where} (columns: {have})",
            field=fld,
            ref=ref,
            where=where,
            have=have,
        ),
    )


def _by_content(rows: Sequence[Row]) -> Columns | None:
    """The column whose cells are phone numbers, for lists without a recognisable header."""
    width = max((len(r[2]) for r in rows), default=0)
    best: tuple[int, int] | None = None
    for i in range(width):
        hits = sum(
            1 for r in rows if i < len(r[2]) and r[2][i].strip() and normalise(r[2][i], allowed=None).e164
        )
        if hits and (best is None or hits > best[0]):
            best = (hits, i)
    if best is None:
        return None
    filled = [r for r in rows if best[1] < len(r[2]) and r[2][best[1]].strip()]
    if best[0] < max(1, len(filled) // 2):
        return None
    col = best[1]
    first = next(k for k, r in enumerate(rows) if col < len(r[2]) and normalise(r[2][col], allowed=None).e164)
    header: Row | None = None
    for r in reversed(rows[:first]):
        if is_blank(r[2]):
            continue
        cell = r[2][col].strip() if col < len(r[2]) else ""
        if cell and not any(ch.isdigit() for ch in cell):
            header = r
        break
    headers = list(header[2]) if header else []
    cols = Columns(header_row=header[0] if header else None, phone=col, headers=headers, found_by="content")
    _guess_others(cols)
    return cols


def _guess_others(cols: Columns) -> None:
    for i, text in enumerate(cols.headers):
        f = guess_field(text) if text and i != cols.phone else None
        if f == NAME and cols.name is None:
            cols.name = i
        elif f == TIMEZONE and cols.timezone is None:
            cols.timezone = i


def _finish(cols: Columns) -> Columns:
    taken = {cols.phone, cols.name, cols.timezone}
    seen: dict[str, int] = {}
    cols.extra = []
    for i, text in enumerate(cols.headers):
        if i in taken:
            continue
        key = text.strip().replace("\n", " ")[:64] or f"column {column_letter(i)}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} ({seen[key]})"
        cols.extra.append((i, key))
    return cols
