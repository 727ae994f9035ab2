"""File kind and text encoding: UTF-8, UTF-8 with BOM, GB18030/GBK, UTF-16; clear refusals."""

from __future__ import annotations

import codecs
import hashlib
import io

import pytest

from dialer.lists.decode import ListFileError, inspect, label

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

TEXT = "姓名,手机号\n张三,13800138000\n李四,13900139000\n"


@pytest.mark.parametrize(
    ("data", "encoding", "shown"),
    [
        (TEXT.encode("utf-8"), "utf-8", "UTF-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig", "UTF-8 with BOM"),
        (TEXT.encode("gb18030"), "gb18030", "GB18030/GBK"),
        (TEXT.encode("gbk"), "gb18030", "GB18030/GBK"),
        (TEXT.encode("utf-16"), "utf-16", "UTF-16"),
        (b"phone\n13800138000\n", "utf-8", "UTF-8"),
    ],
)
def test_encodings_detected(data: bytes, encoding: str, shown: str) -> None:
    info = inspect(io.BytesIO(data), "list.csv")
    assert (info.format, info.encoding, label(info.encoding)) == ("csv", encoding, shown)
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)


def test_gbk_bytes_late_in_a_large_file_are_found() -> None:
    # The first megabyte is plain ASCII; the first Chinese character comes much later.
    data = b"phone,note\n" + b"13800138000,ok\n" * 100_000 + "13900139000,张三\n".encode("gb18030")
    assert inspect(io.BytesIO(data), "big.csv").encoding == "gb18030"


def test_undecodable_text_names_the_place() -> None:
    from dialer.lists.readers import open_rows

    data = b"phone\n13800138000\n\xff\xfe\xfd\x80\x81 broken\n"
    info = inspect(io.BytesIO(data), "bad.csv")
    assert (info.encoding, info.why) == ("gb18030", "not UTF-8: bad byte 19 (0xff)")
    stream = io.BytesIO(data)
    with pytest.raises(
        ListFileError,
        match=r"bad\.csv: cannot read the text \(not UTF-8: bad byte 19 \(0xff\); not GB18030/GBK either: line 3,"
        r" byte 19 \(0xff\)\)",
    ):
        list(open_rows(stream, info))
    with pytest.raises(ListFileError, match=r"not UTF-8: bad byte 6 \(0xff\)"):
        inspect(io.BytesIO(b"\xef\xbb\xbfab\xff"), "bom.csv")  # a BOM says UTF-8: nothing else is tried


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Excel 97-2003"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"PK\x03\x04not really a zip", "damaged"),
        (b"\x00\x01\x02binary\x00", "binary data"),
        (b"\x89PNG\r\n\x1a\n", "image"),
    ],
)
def test_files_that_are_not_lists_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(ListFileError, match=says) as err:
        inspect(io.BytesIO(data), "upload.bin")
    assert str(err.value).startswith("upload.bin: ")


def test_zip_that_is_not_a_workbook(tmp_path) -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("content.xml", "<x/>")
    with pytest.raises(ListFileError, match="OpenDocument"):
        inspect(io.BytesIO(buf.getvalue()), "list.ods")
