"""Finding the header and the columns: Chinese and English names, title rows, content, mappings."""

from __future__ import annotations

import pytest

from dialer.lists.decode import ListFileError
from dialer.lists.mapping import (
    column_index,
    column_letter,
    find_columns,
    guess_field,
    header_key,
    parse_mapping,
)

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")


def rows(*cells_per_row: list[str]) -> list[tuple[int, int, list[str], None]]:
    return [(i + 1, i + 1, list(c), None) for i, c in enumerate(cells_per_row)]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("电话", "phone"), ("手机", "phone"), ("手机号", "phone"), ("手机号码（必填）", "phone"),
        ("联系电话", "phone"), ("号码", "phone"), ("Phone", "phone"), ("MOBILE", "phone"),
        ("Tel.", "phone"), ("Phone Number", "phone"), ("phone_number", "phone"), ("ｐｈｏｎｅ", "phone"),
        ("姓名", "name"), ("Name", "name"), ("客户姓名*", "name"), ("Full name", "name"),
        ("时区", "timezone"), ("Time Zone", "timezone"),
        ("地址", None), ("备注", None), ("序号", None),
    ],
)  # fmt: skip
def test_header_names(header: str, field: str | None) -> None:
    assert guess_field(header) == field


def test_header_below_title_rows_and_mobile_preferred() -> None:
    cols = find_columns(
        "f",
        rows(
            ["社区名单 2024"],
            [],
            ["序号", "姓名", "固定电话", "手机号码", "备注"],
            ["1", "张三", "010-1234", "13800138000", ""],
        ),
    )
    assert (cols.header_row, cols.phone, cols.name, cols.found_by) == (3, 3, 1, "header")
    assert [k for _, k in cols.extra] == ["序号", "固定电话", "备注"]
    assert cols.describe()["phone"] == "D (手机号码)"


def test_no_header_found_by_content() -> None:
    cols = find_columns("f", rows(["张三", "13800138000"], ["李四", "139 0013 9000"], ["王五", "bad"]))
    assert (cols.header_row, cols.phone, cols.found_by) == (None, 1, "content")


def test_unknown_header_above_phone_numbers_is_the_header() -> None:
    cols = find_columns(
        "f",
        rows(["Title"], ["Who", "Contact No.", "Notes"], ["A", "13800138000", "x"], ["B", "13900139000", ""]),
    )
    assert (cols.header_row, cols.phone, cols.found_by) == (2, 1, "content")
    assert [k for _, k in cols.extra] == ["Who", "Notes"]


def test_explicit_mapping_by_name_letter_and_position() -> None:
    data = rows(["标题"], ["客户", "联系号码A", "备用"], ["张三", "13800138000", "13900139000"])
    by_name = find_columns("f", data, parse_mapping("phone=联系号码A,name=客户"))
    assert (by_name.header_row, by_name.phone, by_name.name, by_name.found_by) == (2, 1, 0, "mapping")
    by_letter = find_columns("f", data, parse_mapping("phone=C"), header_row=2)
    assert (by_letter.header_row, by_letter.phone) == (2, 2)
    by_index = find_columns("f", data, parse_mapping("phone=#2, name = A"))
    assert (by_index.phone, by_index.name) == (1, 0)


def test_bad_mappings_say_why() -> None:
    with pytest.raises(ValueError, match="unknown field 'mail'"):
        parse_mapping("mail=C")
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        parse_mapping("phone")
    with pytest.raises(ValueError, match="phone column must be named"):
        parse_mapping("name=B")
    data = rows(["姓名", "手机"], ["张三", "13800138000"])
    with pytest.raises(
        ListFileError, match=r"mapping phone=电话号码: no column named '电话号码' in header row 1"
    ):
        find_columns("f", data, parse_mapping("phone=电话号码,name=姓名"), header_row=1)


def test_no_phone_column_is_a_clear_error() -> None:
    with pytest.raises(ListFileError, match=r"list\.csv: no phone column found"):
        find_columns("list.csv", rows(["姓名", "地址"], ["张三", "北京"], ["李四", "上海"]))


def test_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert [column_index(s) for s in ("A", "z", "AA", "ZZ")] == [0, 25, 26, 701]
    assert header_key(" 手机号码（必填）：") == "手机号码"
