"""Where recordings live on disk, and how they are encrypted at rest.

Layout: `recordings_dir/YYYY/MM/DD/<uuid>.wav` by the call's start date (UTC), or
`<uuid>.wav.enc` when encrypted. No file name ever holds a phone number.

Encryption is AES-256-GCM in independent chunks, so a player can seek (an HTTP range request)
without decrypting the whole file:

    header  "WLREC1\\0\\0" | chunk size (u32) | plain size (u64) | nonce prefix (8 bytes)
    chunks  AES-GCM(key, nonce = prefix + chunk number (u32), data, aad = header + chunk number
            + last-chunk flag) — each chunk is its plaintext plus a 16-byte tag

The header is authenticated with every chunk, and the last chunk is marked, so a truncated,
reordered or altered file fails to decrypt instead of playing something else. The key comes from
`core.secrets` ("recordings_key") and is stretched with HKDF-SHA256.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"WLREC1\0\0"
HEADER = struct.Struct(">8sIQ8s")  # magic, chunk size, plain size, nonce prefix
TAG = 16
CHUNK = 64 * 1024
READ_BLOCK = 1 << 20


class StorageError(Exception):
    """A recording file that cannot be read back as it was stored."""


def relative_path(recording_id: str, started_at: datetime, encrypted: bool) -> str:
    """`YYYY/MM/DD/<uuid>.wav[.enc]`, by the start in UTC. The id must be a UUID."""
    rid = str(uuid.UUID(recording_id))
    day = started_at.astimezone(UTC)
    suffix = ".wav.enc" if encrypted else ".wav"
    return f"{day:%Y/%m/%d}/{rid}{suffix}"


def derive_key(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"warmline recordings v1")
    return hkdf.derive(secret.encode())


def load_key(var_dir: Path) -> bytes:
    from core.secrets import get_secret

    return derive_key(get_secret(var_dir, "recordings_key", nbytes=32))


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def encrypt_file(src: Path, dest: Path, key: bytes, chunk: int = CHUNK) -> None:
    """Write `src` encrypted to `dest` (through a temporary file, so `dest` is whole or absent)."""
    size = src.stat().st_size
    prefix = os.urandom(8)
    header = HEADER.pack(MAGIC, chunk, size, prefix)
    aes = AESGCM(key)
    count = max(1, -(-size // chunk))
    tmp = dest.with_name(dest.name + ".part")
    with src.open("rb") as fin, tmp.open("wb") as fout:
        fout.write(header)
        for i in range(count):
            data = fin.read(chunk)
            nonce = prefix + struct.pack(">I", i)
            fout.write(aes.encrypt(nonce, data, _aad(header, i, i == count - 1)))
    os.replace(tmp, dest)


class EncryptedReader(io.RawIOBase):
    """A seekable, read-only view of the plaintext of an encrypted recording."""

    def __init__(self, path: Path, key: bytes) -> None:
        super().__init__()
        self._f: BinaryIO = path.open("rb")
        header = self._f.read(HEADER.size)
        if len(header) != HEADER.size:
            self._f.close()
            raise StorageError(f"{path}: too short for an encrypted recording")
        magic, self.chunk, self.size, self._prefix = HEADER.unpack(header)
        if magic != MAGIC or self.chunk <= 0:
            self._f.close()
            raise StorageError(f"{path}: not an encrypted warmline recording")
        self._header = header
        self._aes = AESGCM(key)
        self._count = max(1, -(-self.size // self.chunk))
        self._pos = 0
        self._cache: tuple[int, bytes] | None = None
        self.path = path

    def _chunk(self, i: int) -> bytes:
        if self._cache is not None and self._cache[0] == i:
            return self._cache[1]
        self._f.seek(HEADER.size + i * (self.chunk + TAG))
        want = min(self.chunk, self.size - i * self.chunk) + TAG
        data = self._f.read(want)
        nonce = self._prefix + struct.pack(">I", i)
        try:
            plain = self._aes.decrypt(nonce, data, _aad(self._header, i, i == self._count - 1))
        except InvalidTag as exc:
            raise StorageError(f"{self.path}: chunk {i} fails authentication (altered or wrong key)") from exc
        self._cache = (i, plain)
        return plain

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pos >= self.size:
            return 0
        i, off = divmod(self._pos, self.chunk)
        data = self._chunk(i)[off : off + len(buffer)]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        out = bytearray()
        while len(out) < size and self._pos < self.size:
            i, off = divmod(self._pos, self.chunk)
            data = self._chunk(i)[off : off + size - len(out)]
            out += data
            self._pos += len(data)
        return bytes(out)

    def close(self) -> None:
        self._f.close()
        super().close()


def open_audio(path: Path, encrypted: bool, key: bytes | None) -> BinaryIO:
    """The recording's plain bytes, seekable, whether or not it is encrypted at rest."""
    if not encrypted:
        return path.open("rb")
    if key is None:
        raise StorageError("the recording is encrypted and no key was given")
    return io.BufferedReader(EncryptedReader(path, key), buffer_size=CHUNK)


def plain_size(path: Path, encrypted: bool, key: bytes | None) -> int:
    if not encrypted:
        return path.stat().st_size
    with open_audio(path, True, key) as f:
        return f.seek(0, io.SEEK_END)


def iter_range(f: BinaryIO, start: int, end: int, block: int = CHUNK) -> Iterator[bytes]:
    """Bytes start..end (inclusive) of an open recording."""
    f.seek(start)
    left = end - start + 1
    while left > 0:
        data = f.read(min(block, left))
        if not data:
            return
        left -= len(data)
        yield data


def sha256_of(f: BinaryIO) -> tuple[str, int]:
    """Checksum and length of what `f` reads from where it stands to its end."""
    digest = hashlib.sha256()
    n = 0
    while data := f.read(READ_BLOCK):
        digest.update(data)
        n += len(data)
    return digest.hexdigest(), n
