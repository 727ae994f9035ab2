"""CSV and XLSX rows: delimiters, quoted commas and line breaks, row numbers as Excel shows them,
spreadsheet numbers back to the digits typed, formulas marked, damaged files refused."""

from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest

from dialer.lists.decode import ListFileError, inspect
from dialer.lists.readers import RowTuple, cell_text, open_rows, sniff_delimiter

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")


def rows_of(data: bytes, name: str = "list.csv", sheet: str | None = None) -> list[RowTuple]:
    stream = io.BytesIO(data)
    source = open_rows(stream, inspect(stream, name), sheet)
    try:
        return list(source)
    finally:
        source.close()


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("name,phone\nA,13800138000\nB,13900139000\n", ","),
        ("name;phone\nA;13800138000\nB;13900139000\n", ";"),
        ("name\tphone\nA\t13800138000\nB\t13900139000\n", "\t"),
        ("name|phone\nA|13800138000\nB|13900139000\n", "|"),
        # Commas inside quoted fields do not fool the sniffer into ','.
        ('name;address;phone\nA;"Road 1, Block 2";13800138000\nB;"x, y, z";13900139000\n', ";"),
        ("phone\n13800138000\n13900139000\n", ","),  # one column: nothing to split
    ],
)
def test_delimiter_is_sniffed(text: str, delimiter: str) -> None:
    assert sniff_delimiter(text.encode(), "utf-8") == delimiter
    stream = io.BytesIO(text.encode())
    assert open_rows(stream, inspect(stream, "x.csv")).delimiter == delimiter


def test_csv_rows_are_numbered_as_excel_shows_them() -> None:
    text = 'name,phone,note\nA,13800138000,"line one\nline two"\n\nB,13900139000,"a, b"\n'
    rows = rows_of(text.encode("gb18030"))
    assert [(r[0], r[1]) for r in rows] == [(1, 1), (2, 2), (3, 4), (4, 5)]
    assert rows[1][2] == ["A", "13800138000", "line one\nline two"]
    assert rows[2][2] == []  # the blank line is a row of its own
    assert rows[3][2] == ["B", "13900139000", "a, b"]
    assert all(r[3] is None for r in rows)


def test_utf8_bom_is_not_part_of_the_first_header() -> None:
    rows = rows_of("\ufeff手机号,姓名\n13800138000,张三\n".encode())
    assert rows[0][2] == ["手机号", "姓名"]


def test_unclosed_quote_is_an_error_not_a_lost_tail() -> None:
    body = "".join(f"P{i},1380013{i:04d}\n" for i in range(200))
    text = 'name,phone\nA,"13800138000\n' + body
    with pytest.raises(ListFileError, match=r"row 2 \(line 2\).*never closed"):
        rows_of(text.encode())


def make_xlsx(build) -> bytes:
    wb = openpyxl.Workbook()
    build(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def messy_workbook(wb: openpyxl.Workbook) -> None:
    ws = wb.active
    ws.title = "名单"
    ws["A1"] = "2024年 社区老人回访名单"
    ws.merge_cells("A1:D1")
    ws.append([])
    ws.append(["序号", "姓名", "手机号", "出生日期"])
    ws.append([1, "张三", 13800138000.0, datetime(1940, 5, 1)])
    ws.append([2, "李四", 13900139000, date(1938, 1, 2)])
    ws.append([3, "王五", "=A4*2", "x"])
    ws.append([])
    ws.append([4, "赵六", 1.3800138001e10, 3.25])
    c = ws.cell(row=9, column=3, value=1012345678)
    c.number_format = "00000000000"  # shows 01012345678
    ws.cell(row=9, column=2, value=True)
    other = wb.create_sheet("另一区")
    other.append(["手机号"])
    other.append([13700137000])


def test_xlsx_cells_come_back_as_typed() -> None:
    rows = rows_of(make_xlsx(messy_workbook), "list.xlsx")
    by_row = {r[0]: r for r in rows}
    assert [r[0] for r in rows] == list(range(1, 10))  # blank rows included, numbered as in Excel
    assert by_row[1][2][0] == "2024年 社区老人回访名单"
    assert by_row[2][2] == []
    assert by_row[3][2] == ["序号", "姓名", "手机号", "出生日期"]
    assert by_row[4][2] == ["1", "张三", "13800138000", "1940-05-01"]  # float 13800138000.0 -> digits
    assert by_row[5][2] == ["2", "李四", "13900139000", "1938-01-02"]
    assert by_row[6][2][2] == "=A4*2" and by_row[6][3] == frozenset({2})  # a formula, marked
    assert by_row[8][2][2:] == ["13800138001", "3.25"]
    assert by_row[9][2][1:] == ["TRUE", "01012345678"]  # zero-padded number format honoured
    assert all(r[1] is None for r in rows)


def test_xlsx_sheet_choice_and_other_sheets() -> None:
    data = make_xlsx(messy_workbook)
    stream = io.BytesIO(data)
    source = open_rows(stream, inspect(stream, "list.xlsx"))
    assert (source.sheet, source.other_sheets) == ("名单", ("另一区",))
    source.close()
    assert rows_of(data, "list.xlsx", sheet="另一区")[1][2] == ["13700137000"]
    with pytest.raises(ListFileError, match=r"no sheet named 'nope' \(sheets: '名单', '另一区'\)"):
        rows_of(data, "list.xlsx", sheet="nope")


def test_damaged_xlsx_is_refused() -> None:
    data = bytearray(make_xlsx(messy_workbook))
    data[len(data) // 2 : len(data) // 2 + 200] = b"\x00" * 200
    with pytest.raises(ListFileError, match=r"list\.xlsx: "):
        rows_of(bytes(data), "list.xlsx")


def test_sheet_for_a_csv_is_an_error() -> None:
    stream = io.BytesIO(b"phone\n13800138000\n")
    with pytest.raises(ListFileError, match="CSV"):
        open_rows(stream, inspect(stream, "x.csv"), sheet="Sheet1")


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        (None, None, ""),
        (13800138000, None, "13800138000"),
        (13800138000.0, None, "13800138000"),
        (1.38001380e10, None, "13800138000"),
        (8613800138000.0, None, "8613800138000"),
        (0.1 + 0.2, None, "0.3"),
        (755, "0000", "0755"),
        (755, "General", "755"),
        (True, None, "TRUE"),
        (datetime(2024, 1, 2, 3, 4), None, "2024-01-02 03:04:00"),
    ],
)
def test_cell_text(value, fmt, text) -> None:
    assert cell_text(value, fmt) == text
