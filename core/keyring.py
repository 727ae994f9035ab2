"""The keyring: the keys that encrypt personal data at rest, kept apart from that data.

One JSON file, mode 0600, at ``Settings.keyring_path`` (default ``VAR_DIR/keys/keyring.json``;
production puts it on another volume than the recordings, or on a secrets mount)::

    {"version": 1, "current": "3f9a0c1d", "keys": {"3f9a0c1d": {"key": "<base64, 32 bytes>",
                                                                "created": "2026-12-02T20:00:00+00:00"}}}

Every encrypted file names the id of the key that wrote it, so keys can be rotated: ``rotate()``
adds a new current key, the data is re-encrypted with it (``warmline privacy rotate-key``), then
``retire()`` drops the keys nothing uses any more. A keyring is created on first use; a key that
an older warmline kept in ``secrets.json`` ("recordings_key") is carried over as ``legacy``, so the
files it wrote stay readable until they are re-encrypted.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LEGACY_ID = "legacy"
KEY_BYTES = 32


class KeyringError(RuntimeError):
    """The keyring cannot be read, or lacks a key some data needs."""


def derive_legacy_key(secret: str) -> bytes:
    """The AES key an older warmline derived from secrets.json's "recordings_key"."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"warmline recordings v1")
    return hkdf.derive(secret.encode())


@dataclass
class Keyring:
    path: Path
    current: str
    keys: dict[str, bytes]
    created: dict[str, str] = field(default_factory=dict)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyringError(
                f"the keyring {self.path} has no key {key_id!r} (was it retired too early?)"
            ) from None

    @property
    def current_key(self) -> bytes:
        return self.key(self.current)

    def to_json(self) -> str:
        keys = {
            kid: {"key": base64.b64encode(k).decode(), "created": self.created.get(kid, "")}
            for kid, k in self.keys.items()
        }
        return json.dumps({"version": 1, "current": self.current, "keys": keys}, indent=2, sort_keys=True)


def _new_id(taken: dict[str, bytes]) -> str:
    while (kid := secrets.token_hex(4)) in taken:
        pass
    return kid


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # O_EXCL lock file: two processes starting together must not each make a different key.
    lock = path.with_name(path.name + ".lock")
    for _ in range(500):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            time.sleep(0.01)
    else:
        raise KeyringError(f"{lock} is held; remove it if no warmline process is running")
    try:
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _read(path: Path) -> Keyring:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyringError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        keys = {kid: base64.b64decode(v["key"]) for kid, v in raw["keys"].items()}
        created = {kid: str(v.get("created", "")) for kid, v in raw["keys"].items()}
        ring = Keyring(path, str(raw["current"]), keys, created)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyringError(f"{path}: not a readable warmline keyring ({exc})") from exc
    if ring.current not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
        raise KeyringError(f"{path}: the current key is missing or a key is not {KEY_BYTES} bytes")
    return ring


def _write(ring: Keyring) -> None:
    ring.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = ring.path.with_name(ring.path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(ring.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, ring.path)


def load_keyring(path: Path, *, var_dir: Path | None = None) -> Keyring:
    """The keyring at ``path``, created (0600) with one fresh key when there is none yet."""
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(path):
        if path.exists():  # another process made it meanwhile
            return _read(path)
        kid = secrets.token_hex(4)
        ring = Keyring(path, kid, {kid: secrets.token_bytes(KEY_BYTES)}, {kid: _now()})
        if var_dir is not None:
            from core.secrets import load_secrets

            old = load_secrets(var_dir).get("recordings_key")
            if old:
                ring.keys[LEGACY_ID] = derive_legacy_key(old)
                ring.created[LEGACY_ID] = ""
        _write(ring)
        return ring


def rotate(path: Path) -> Keyring:
    """Add a fresh key and make it the current one; the old keys stay until retired."""
    with _locked(path):
        ring = _read(path)
        kid = _new_id(ring.keys)
        ring.keys[kid] = secrets.token_bytes(KEY_BYTES)
        ring.created[kid] = _now()
        ring.current = kid
        _write(ring)
        return ring


def retire(path: Path, keep: set[str]) -> list[str]:
    """Drop every key but the current one and those in ``keep`` (still used by some data)."""
    with _locked(path):
        ring = _read(path)
        gone = [kid for kid in ring.keys if kid != ring.current and kid not in keep]
        for kid in gone:
            del ring.keys[kid]
            ring.created.pop(kid, None)
        if gone:
            _write(ring)
        return gone
