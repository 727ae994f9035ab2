"""Rows out of CSV text and XLSX workbooks, streamed, numbered as the person sees them.

Every row is yielded as `(row, line, cells, formulas)`:

- `row` is the 1-based row number a person sees when they open the file in Excel or WPS, counting
  title rows, the header and blank rows (for CSV: the record's number; a quoted line break inside
  a field does not start a new row);
- `line` is the physical text line the record starts on (CSV only; differs from `row` only after
  a field with a line break in it);
- `cells` are the cell texts; spreadsheet numbers are turned back into the digits a person typed
  (13800138000.0 → "13800138000", a zero-padded number format keeps its leading zeros);
- `formulas` is None, or the set of column indexes whose cell is a formula (XLSX only; for CSV the
  phone check itself refuses text that starts like a formula).

Nothing reads the whole file into memory: CSV goes through `csv.reader` over a decoding stream,
XLSX through openpyxl's read-only (streaming) mode.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any, BinaryIO

from core.i18n import _
from dialer.lists.decode import FileInfo, ListFileError, label

RowTuple = tuple[int, int | None, list[str], frozenset[int] | None]

DELIMITERS = (",", "\t", ";", "|")
SNIFF_BYTES = 64 * 1024
# A record spanning more lines than this has an unclosed quote that swallowed the rows after it.
MAX_RECORD_LINES = 50
TAIL_BYTES = 1 << 20
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\n|\r|$)")  # line ends as csv counts them
MAX_COLUMNS = 500
csv.field_size_limit(1 << 20)


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (for the progress bar)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class CsvRows:
    """Rows of a CSV/TSV text file; the delimiter is sniffed from the first 64 KiB."""

    format = "csv"
    sheet: str | None = None
    other_sheets: tuple[str, ...] = ()

    def __init__(self, stream: BinaryIO, info: FileInfo) -> None:
        assert info.encoding is not None
        self.info = info
        self.stream = stream
        stream.seek(0)
        self.delimiter = sniff_delimiter(stream.read(SNIFF_BYTES), info.encoding)
        stream.seek(0)
        self._counter = _CountingReader(stream)
        self.total = info.size

    def progress(self) -> tuple[int, int]:
        return self._counter.count, self.total

    def __iter__(self) -> Iterator[RowTuple]:
        assert self.info.encoding is not None
        text = io.TextIOWrapper(
            io.BufferedReader(self._counter, 1 << 16), encoding=self.info.encoding, newline=""
        )
        reader = csv.reader(text, delimiter=self.delimiter)
        row = 0
        line = 1
        start = end = 0
        try:
            for cells in reader:
                row += 1
                start, end = line, reader.line_num
                if end - line >= MAX_RECORD_LINES:
                    raise ListFileError(
                        self.info.name,
                        _(
                            'row {row} (line {line}) runs over {n} lines: a quote (") opened there is never'
                            " closed and would swallow the rows after it; fix the quote and try again",
                            row=row,
                            line=line,
                            n=end - line + 1,
                        ),
                    )
                if len(cells) > MAX_COLUMNS:
                    raise ListFileError(self.info.name, _too_wide(row, len(cells)))
                yield row, line, cells, None
                line = end + 1
            if end > start:  # the last record spans lines: did the file end inside a quote?
                self._check_closed(row, start, end)
        except csv.Error as exc:
            raise ListFileError(
                self.info.name, _("line {line}: {error}", line=reader.line_num, error=exc)
            ) from exc
        except UnicodeDecodeError as exc:
            tried = f"{self.info.why}; " if self.info.why else ""
            where = self._locate_bad_byte()
            raise ListFileError(
                self.info.name,
                _(
                    "cannot read the text ({tried}not {encoding} either: {where}); save it as UTF-8 CSV or .xlsx",
                    tried=tried,
                    encoding=label(self.info.encoding),
                    where=where,
                ),
            ) from exc

    def _locate_bad_byte(self) -> str:
        """Line and byte of the first byte the encoding refuses (the error path only)."""
        assert self.info.encoding is not None
        decoder = codecs.getincrementaldecoder(self.info.encoding)()
        self.stream.seek(0)
        pos, line = 0, 1
        while chunk := self.stream.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                return f"line {line}, byte {pos + exc.start + 1} (0x{chunk[exc.start]:02x})"
            line += chunk.count(b"\n")
            pos += len(chunk)
        return "the last bytes (cut off in the middle of a character)"

    def _check_closed(self, row: int, start: int, end: int) -> None:
        """csv.reader quietly ends a quoted field at the end of the file; re-read the last record
        strictly, so a quote left open near the end is reported instead of eating the last rows."""
        assert self.info.encoding is not None
        self.stream.seek(max(0, self.info.size - TAIL_BYTES))
        tail = self.stream.read().decode(self.info.encoding, errors="ignore")
        lines = [x for x in _LINES.findall(tail) if x][-(end - start + 1) :]
        try:
            list(csv.reader(io.StringIO("".join(lines)), delimiter=self.delimiter, strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise ListFileError(
                    self.info.name,
                    _(
                        'row {row} (line {line}) runs to the end of the file: a quote (") opened there is never'
                        " closed and would swallow the rows after it; fix the quote and try again",
                        row=row,
                        line=start,
                    ),
                ) from exc

    def close(self) -> None:
        pass


def sniff_delimiter(head: bytes, encoding: str) -> str:
    """The delimiter that splits the first records into the most consistent number of columns."""
    sample = head.decode(encoding, errors="ignore")
    truncated = len(head) >= SNIFF_BYTES
    best: tuple[bool, float, int] = (False, 0.0, 0)
    chosen = ","
    for delimiter in DELIMITERS:
        try:
            records = list(islice(csv.reader(io.StringIO(sample), delimiter=delimiter), 200))
        except csv.Error:
            continue
        if truncated and len(records) > 1:
            records.pop()  # probably cut in the middle
        counts = [len(r) for r in records if any(c.strip() for c in r)]
        if not counts:
            continue
        mode, freq = Counter(counts).most_common(1)[0]
        score = (mode > 1, freq / len(counts), mode)
        if score > best:
            best, chosen = score, delimiter
    return chosen


_ZERO_FORMAT = re.compile(r"0+")


def cell_text(value: Any, number_format: str | None = None) -> str:
    """A spreadsheet value as the text a person typed or sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _pad(str(value), number_format)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return _pad(str(int(value)), number_format)
        return f"{value:.15g}"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _pad(digits: str, number_format: str | None) -> str:
    # A number format of only zeros ("00000000000") shows leading zeros the value does not hold.
    if number_format and len(number_format) > len(digits) and _ZERO_FORMAT.fullmatch(number_format):
        return digits.rjust(len(number_format), "0")
    return digits


class XlsxRows:
    """Rows of one worksheet (the first visible one unless named), in openpyxl's streaming mode."""

    format = "xlsx"
    delimiter: str | None = None

    def __init__(self, stream: BinaryIO, info: FileInfo, sheet: str | None = None) -> None:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        self.info = info
        stream.seek(0)
        try:
            self.workbook = openpyxl.load_workbook(stream, read_only=True, data_only=False)
        except (InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise ListFileError(info.name, _("not a readable Excel workbook ({error})", error=exc)) from exc
        except Exception as exc:  # openpyxl raises many kinds for damaged files
            error = f"{type(exc).__name__}: {exc}"
            raise ListFileError(info.name, _("a damaged Excel workbook ({error})", error=error)) from exc
        worksheets = [ws for ws in self.workbook.worksheets if hasattr(ws, "iter_rows")]
        if sheet is not None:
            found = [ws for ws in worksheets if ws.title == sheet]
            if not found:
                names = ", ".join(repr(ws.title) for ws in worksheets)
                self.close()
                raise ListFileError(
                    info.name, _("no sheet named '{sheet}' (sheets: {names})", sheet=sheet, names=names)
                )
            ws = found[0]
        else:
            visible = [ws for ws in worksheets if ws.sheet_state == "visible"] or worksheets
            if not visible:
                self.close()
                raise ListFileError(info.name, _("the workbook has no worksheet"))
            ws = visible[0]
        self.ws = ws
        self.sheet = ws.title
        self.other_sheets = tuple(
            w.title for w in worksheets if w is not ws and w.sheet_state == "visible" and (w.max_row or 0) > 1
        )
        self.total = max(ws.max_row or 0, 1)
        self._done = 0
        # Some writers leave a wrong <dimension>; read every row there is instead.
        ws.reset_dimensions()

    def progress(self) -> tuple[int, int]:
        return self._done, max(self.total, self._done)

    def __iter__(self) -> Iterator[RowTuple]:
        expected = 0
        try:
            for cells in self.ws.iter_rows():
                expected += 1
                row = next((c.row for c in cells if getattr(c, "row", None)), expected)
                expected = row
                self._done = row
                if len(cells) > MAX_COLUMNS:
                    raise ListFileError(self.info.name, _too_wide(row, len(cells)))
                texts: list[str] = []
                formulas: set[int] | None = None
                for i, c in enumerate(cells):
                    if c.data_type == "f":
                        formulas = formulas or set()
                        formulas.add(i)
                        texts.append(str(c.value))
                    else:
                        texts.append(cell_text(c.value, getattr(c, "number_format", None)))
                yield row, None, texts, frozenset(formulas) if formulas else None
        except ListFileError:
            raise
        except Exception as exc:
            raise ListFileError(
                self.info.name, _("damaged worksheet near row {row}: {error}", row=expected, error=exc)
            ) from exc

    def close(self) -> None:
        self.workbook.close()


RowSource = CsvRows | XlsxRows


def open_rows(stream: BinaryIO, info: FileInfo, sheet: str | None = None) -> RowSource:
    if info.format == "xlsx":
        return XlsxRows(stream, info, sheet)
    if sheet is not None:
        raise ListFileError(
            info.name, _("a sheet ('{sheet}') was named, but this is a CSV text file", sheet=sheet)
        )
    return CsvRows(stream, info)


def _too_wide(row: int, columns: int) -> str:
    return _("row {row} has {n} columns (at most {most})", row=row, n=columns, most=MAX_COLUMNS)
