"""Where recordings live on disk, and how they are encrypted at rest.

Layout: `recordings_dir/YYYY/MM/DD/<uuid>.wav` by the call's start date (UTC), or
`<uuid>.wav.enc` when encrypted. No file name ever holds a phone number.

Encryption is AES-256-GCM in independent chunks, streamed (a file of any size takes one chunk of
memory), and a player can seek (an HTTP range request) without decrypting the whole file:

    header  "WLREC2\\0\\0" | chunk size (u32) | plain size (u64) | nonce prefix (8 bytes)
            | key id (8 bytes, ASCII, zero-padded)
    chunks  AES-GCM(key, nonce = prefix + chunk number (u32), data, aad = header + chunk number
            + last-chunk flag) — each chunk is its plaintext plus a 16-byte tag

The header is authenticated with every chunk, and the last chunk is marked, so a truncated,
reordered or altered file fails to decrypt instead of playing something else. The key id names the
keyring's key (core.keyring) that wrote the file, so keys rotate; files of the first format
("WLREC1", no key id) were written with the keyring's ``legacy`` key.

Everything that reads a recording goes through :func:`open_audio` (the one decrypting reader).
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
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.keyring import LEGACY_ID, Keyring, KeyringError, derive_legacy_key

MAGIC_V1 = b"WLREC1\0\0"
MAGIC = b"WLREC2\0\0"
HEADER_V1 = struct.Struct(">8sIQ8s")  # magic, chunk size, plain size, nonce prefix
HEADER = struct.Struct(">8sIQ8s8s")  # ... and the key id
TAG = 16
CHUNK = 64 * 1024
READ_BLOCK = 1 << 20

# What decrypts: one key (tests, a single key) or a keyring (a key per key id).
Keys = bytes | Keyring


class StorageError(Exception):
    """A recording file that cannot be read back as it was stored."""


def relative_path(recording_id: str, started_at: datetime, encrypted: bool) -> str:
    """`YYYY/MM/DD/<uuid>.wav[.enc]`, by the start in UTC. The id must be a UUID."""
    rid = str(uuid.UUID(recording_id))
    day = started_at.astimezone(UTC)
    suffix = ".wav.enc" if encrypted else ".wav"
    return f"{day:%Y/%m/%d}/{rid}{suffix}"


def derive_key(secret: str) -> bytes:
    """A key from a passphrase (how the first format's key was made from secrets.json)."""
    return derive_legacy_key(secret)


def _key_for(keys: Keys, key_id: str) -> bytes:
    if isinstance(keys, bytes):
        return keys
    try:
        return keys.key(key_id)
    except KeyringError as exc:
        raise StorageError(str(exc)) from exc


def key_id_of(path: Path) -> str | None:
    """The id of the key an encrypted file was written with (None: not an encrypted recording)."""
    with path.open("rb") as f:
        head = f.read(HEADER.size)
    if head.startswith(MAGIC_V1):
        return LEGACY_ID
    if head.startswith(MAGIC) and len(head) == HEADER.size:
        kid: bytes = HEADER.unpack(head)[4]
        return kid.rstrip(b"\0").decode("ascii", "replace")
    return None


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def encrypt_stream(
    fin: BinaryIO, size: int, dest: Path, key: bytes, *, key_id: str = "", chunk: int = CHUNK
) -> None:
    """Write the `size` bytes `fin` reads encrypted to `dest`, one chunk in memory at a time,
    through a temporary file (0600), so `dest` is whole or absent and never readable by others."""
    prefix = os.urandom(8)
    kid = key_id.encode("ascii")
    if len(kid) > 8:
        raise ValueError(f"key id {key_id!r}: at most 8 ASCII characters")
    header = HEADER.pack(MAGIC, chunk, size, prefix, kid.ljust(8, b"\0"))
    aes = AESGCM(key)
    count = max(1, -(-size // chunk))
    tmp = dest.with_name(dest.name + ".part")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as fout:
            fout.write(header)
            for i in range(count):
                data = fin.read(min(chunk, size - i * chunk))
                if len(data) != min(chunk, size - i * chunk):
                    raise StorageError(f"{dest.name}: the source ended early (chunk {i})")
                nonce = prefix + struct.pack(">I", i)
                fout.write(aes.encrypt(nonce, data, _aad(header, i, i == count - 1)))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def encrypt_file(src: Path, dest: Path, keys: Keys, chunk: int = CHUNK, *, key_id: str | None = None) -> None:
    """Write `src` encrypted to `dest` with `keys` (a keyring: its current key)."""
    if isinstance(keys, Keyring):
        key, kid = keys.current_key, keys.current
    else:
        key, kid = keys, key_id or ""
    with src.open("rb") as fin:
        encrypt_stream(fin, src.stat().st_size, dest, key, key_id=kid, chunk=chunk)


def reencrypt_file(path: Path, keys: Keyring) -> bool:
    """Re-encrypt an encrypted recording with the keyring's current key, in place (streamed,
    through a temporary file). False when it already is."""
    if key_id_of(path) == keys.current:
        return False
    with open_audio(path, True, keys) as fin:
        size = fin.seek(0, io.SEEK_END)
        fin.seek(0)
        encrypt_stream(fin, size, path, keys.current_key, key_id=keys.current)
    return True


class EncryptedReader(io.RawIOBase):
    """A seekable, read-only view of the plaintext of an encrypted recording."""

    def __init__(self, path: Path, keys: Keys) -> None:
        super().__init__()
        self._f: BinaryIO = path.open("rb")
        try:
            self._header, key_id = self._read_header(path)
            self._aes = AESGCM(_key_for(keys, key_id))
        except BaseException:
            self._f.close()
            raise
        self._count = max(1, -(-self.size // self.chunk))
        self._pos = 0
        self._cache: tuple[int, bytes] | None = None
        self.path = path

    def _read_header(self, path: Path) -> tuple[bytes, str]:
        head = self._f.read(HEADER_V1.size)
        if head.startswith(MAGIC_V1) and len(head) == HEADER_V1.size:
            _magic, self.chunk, self.size, self._prefix = HEADER_V1.unpack(head)
            key_id = LEGACY_ID
        elif head.startswith(MAGIC):
            head += self._f.read(HEADER.size - HEADER_V1.size)
            if len(head) != HEADER.size:
                raise StorageError(f"{path}: too short for an encrypted recording")
            _magic, self.chunk, self.size, self._prefix, kid = HEADER.unpack(head)
            key_id = kid.rstrip(b"\0").decode("ascii", "replace")
        elif len(head) < HEADER_V1.size:
            raise StorageError(f"{path}: too short for an encrypted recording")
        else:
            raise StorageError(f"{path}: not an encrypted warmline recording")
        if self.chunk <= 0:
            raise StorageError(f"{path}: not an encrypted warmline recording")
        self._data_at = len(head)
        return head, key_id

    def _chunk(self, i: int) -> bytes:
        if self._cache is not None and self._cache[0] == i:
            return self._cache[1]
        self._f.seek(self._data_at + i * (self.chunk + TAG))
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


def open_audio(path: Path, encrypted: bool, key: Keys | None) -> BinaryIO:
    """The recording's plain bytes, seekable, whether or not it is encrypted at rest: the one
    reader of recordings (playback, download, verify, analytics, QA, export, re-encryption)."""
    if not encrypted:
        return path.open("rb")
    if key is None:
        raise StorageError("the recording is encrypted and no key was given")
    return io.BufferedReader(EncryptedReader(path, key), buffer_size=CHUNK)


def plain_size(path: Path, encrypted: bool, key: Keys | None) -> int:
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
