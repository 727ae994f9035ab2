"""What kind of file was uploaded, and in which text encoding.

Lists come as XLSX workbooks or as CSV/TSV text exported by Excel or WPS, which on Chinese
Windows writes GBK (read here as its superset GB18030), and otherwise UTF-8, sometimes with a BOM,
or UTF-16 ("Unicode text"). One streamed pass computes the SHA-256 and checks the whole file as
UTF-8 (cheap); text that is not UTF-8 is read as GB18030, which is not checked in advance: its
decoding is as expensive as reading the list, and a byte it refuses halfway makes the import fail
as a whole (one transaction) with the line named, so nothing is half-imported either way.
"""

from __future__ import annotations

import codecs
import hashlib
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from core.i18n import N_, _

CHUNK = 1 << 20
# A list file larger than this is refused before it is read, on every path (CLI, API, console).
MAX_FILE_BYTES = 512 << 20
# An XLSX is a ZIP: what its parts unpack to is bounded, so a small "decompression bomb" that
# unpacks to gigabytes is refused from its directory before openpyxl inflates anything. (zipfile
# never inflates a part beyond the size its directory declares: a lying entry fails its CRC.)
MAX_XLSX_UNPACKED = 1 << 30
MAX_XLSX_PARTS = 10_000
MAX_XLSX_RATIO = 200  # unpacked / packed, for parts over RATIO_FROM bytes
RATIO_FROM = 1 << 20


class ListFileError(ValueError):
    """A file that cannot be read as a call list, with a message saying what and where."""

    def __init__(self, file_name: str, message: str) -> None:
        super().__init__(_("{file}: {problem}", file=file_name, problem=message))
        self.file_name = file_name
        self.message = message


@dataclass(frozen=True)
class FileInfo:
    name: str
    format: str  # "csv" or "xlsx"
    encoding: str | None  # Python codec name for text files
    sha256: str
    size: int
    why: str = ""  # for GB18030: where UTF-8 failed (for a message if GB18030 fails too)


_MAGIC_REFUSED = (
    (
        b"\xd0\xcf\x11\xe0",
        N_("this is an Excel 97-2003 (.xls) workbook or a password-protected file: save it as .xlsx or CSV"),
    ),
    (b"%PDF", N_("this is a PDF document, not a list: export the list as .xlsx or CSV")),
    (b"\x1f\x8b", N_("this is a gzip archive: unpack it first")),
    (b"Rar!", N_("this is a RAR archive: unpack it first")),
    (b"7z\xbc\xaf", N_("this is a 7-Zip archive: unpack it first")),
    (b"\x89PNG", N_("this is an image, not a list")),
    (b"\xff\xd8\xff", N_("this is an image, not a list")),
)


def inspect(stream: BinaryIO, name: str) -> FileInfo:
    """Identify the file (format, encoding, checksum) or raise ListFileError. Leaves it at 0."""
    size = stream.seek(0, 2)
    if size > MAX_FILE_BYTES:
        stream.seek(0)
        raise ListFileError(
            name,
            _(
                "the file is {size} MiB; at most {most} MiB are accepted (split the list into several files)",
                size=size >> 20,
                most=MAX_FILE_BYTES >> 20,
            ),
        )
    stream.seek(0)
    head = stream.read(8192)
    stream.seek(0)
    if not head.strip():
        raise ListFileError(name, _("the file is empty"))
    for magic, what in _MAGIC_REFUSED:
        if head.startswith(magic):
            raise ListFileError(name, _(what))
    if head.startswith(b"PK\x03\x04"):
        return FileInfo(name, "xlsx", None, *_check_xlsx(stream, name))
    encoding, sha, size, why = _text_encoding(stream, name, head)
    return FileInfo(name, "csv", encoding, sha, size, why)


def _check_xlsx(stream: BinaryIO, name: str) -> tuple[str, int]:
    sha, size = _digest(stream)
    try:
        with zipfile.ZipFile(stream) as z:
            parts = z.infolist()
            names = {p.filename for p in parts}
            _check_unpacked(name, parts)
    except zipfile.BadZipFile as exc:
        raise ListFileError(name, _("a damaged ZIP/XLSX file ({error})", error=exc)) from exc
    finally:
        stream.seek(0)
    if "xl/workbook.xml" not in names:
        if "content.xml" in names:
            raise ListFileError(name, _("an OpenDocument spreadsheet (.ods): save it as .xlsx or CSV"))
        if "word/document.xml" in names:
            raise ListFileError(name, _("a Word document, not a list: export the list as .xlsx or CSV"))
        raise ListFileError(name, _("a ZIP archive but not an Excel workbook"))
    return sha, size


def _check_unpacked(name: str, parts: list[zipfile.ZipInfo]) -> None:
    """Refuse a workbook whose parts would unpack to too much (a decompression bomb)."""
    if len(parts) > MAX_XLSX_PARTS:
        raise ListFileError(
            name,
            _("the workbook has {n} parts (at most {most}): not a list", n=len(parts), most=MAX_XLSX_PARTS),
        )
    total = sum(p.file_size for p in parts)
    if total > MAX_XLSX_UNPACKED:
        raise ListFileError(
            name,
            _(
                "the workbook unpacks to {size} MiB (at most {most} MiB): refused as a possible"
                " decompression bomb; save the list as CSV or split it",
                size=total >> 20,
                most=MAX_XLSX_UNPACKED >> 20,
            ),
        )
    for p in parts:
        if p.file_size > RATIO_FROM and p.file_size > MAX_XLSX_RATIO * max(1, p.compress_size):
            raise ListFileError(
                name,
                _(
                    "part {part} unpacks {ratio} times its size (at most {most}): refused as a possible"
                    " decompression bomb",
                    part=p.filename,
                    ratio=p.file_size // max(1, p.compress_size),
                    most=MAX_XLSX_RATIO,
                ),
            )


def _digest(stream: BinaryIO) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return h.hexdigest(), size


def _text_encoding(stream: BinaryIO, name: str, head: bytes) -> tuple[str, str, int, str]:
    if head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in head:
        raise ListFileError(name, _("binary data, not a CSV text file or an XLSX workbook"))
    else:
        candidates = ["utf-8", "gb18030"]
    h = hashlib.sha256()
    size = 0
    # The BOM is valid UTF-8 itself; checking with plain UTF-8 keeps byte positions true.
    decoder = codecs.getincrementaldecoder("utf-8" if candidates[0] == "utf-8-sig" else candidates[0])()
    failure: dict[str, str] = {}
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        if candidates[0] not in failure:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                failure[candidates[0]] = f"byte {size + exc.start + 1} (0x{chunk[exc.start]:02x})"
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise ListFileError(name, _("larger than {most} MiB: split the list", most=MAX_FILE_BYTES >> 20))
    if candidates[0] not in failure:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            failure[candidates[0]] = "the last bytes (cut off in the middle of a character)"
    stream.seek(0)
    if candidates[0] not in failure:
        return candidates[0], h.hexdigest(), size, ""
    why = f"not {_label(candidates[0])}: bad {failure[candidates[0]]}"
    if len(candidates) == 1:
        raise ListFileError(name, _("cannot read the text ({why}); save it as UTF-8 CSV or .xlsx", why=why))
    # GB18030 decodes while the rows are read; see the module's note.
    return candidates[1], h.hexdigest(), size, why


def _label(encoding: str) -> str:
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gb18030": "GB18030/GBK", "utf-16": "UTF-16"}.get(
        encoding, encoding
    )


def label(encoding: str | None) -> str:
    """How the encoding is named to people: UTF-8, UTF-8 with BOM, GB18030/GBK, UTF-16."""
    if encoding == "utf-8-sig":
        return "UTF-8 with BOM"
    return _label(encoding) if encoding else "-"
