"""Recordings encrypted at rest: encrypting those stored in clear, and rotating the key.

    report = encrypt_existing(session, settings, actor="cli")    # plaintext .wav -> .wav.enc
    report = rotate_key(session, settings, actor="cli")          # new key; every file re-encrypted

Both stream each file through a temporary file beside it (one chunk in memory; a crash leaves the
old file whole), commit file by file (a long run that stops keeps what it did), and audit one
entry per run with the counts. The keyring's old keys are retired only once no file needs them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.keyring import Keyring, retire, rotate
from core.settings import Settings
from recordings import storage
from recordings.models import CallRecording, RecordingStatus
from recordings.service import file_of, keyring

log = logging.getLogger(__name__)


@dataclass
class AtRestReport:
    done: int = 0
    already: int = 0
    missing: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    key_id: str = ""
    retired: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "already": self.already,
            "missing": self.missing,
            "failed": self.failed,
            "key_id": self.key_id,
            "retired_keys": self.retired,
        }


def _stored(session: Session) -> Iterator[CallRecording]:
    q = (
        select(CallRecording)
        .where(CallRecording.status != RecordingStatus.purged)
        .order_by(CallRecording.started_at, CallRecording.id)
    )
    yield from session.scalars(q).all()


def encrypt_existing(session: Session, settings: Settings, *, actor: str) -> AtRestReport:
    """Encrypt every recording still stored in clear (and turn its row to the .enc file)."""
    ring = keyring(settings)
    report = AtRestReport(key_id=ring.current)
    for rec in _stored(session):
        if rec.encrypted:
            report.already += 1
            continue
        plain = file_of(settings, rec)
        if not plain.is_file():
            report.missing.append(rec.id)
            continue
        enc = plain.with_name(plain.name + ".enc")
        try:
            storage.encrypt_file(plain, enc, ring)
        except (OSError, storage.StorageError) as exc:
            report.failed.append({"id": rec.id, "reason": str(exc)})
            continue
        rec.path = rec.path + ".enc"
        rec.encrypted = True
        rec.stored_bytes = enc.stat().st_size
        session.commit()  # the row names the encrypted file before the clear one goes
        plain.unlink(missing_ok=True)
        report.done += 1
    audit(session, actor, "recordings.encrypt_existing", None, **_counts(report))
    return report


def reencrypt_all(session: Session, settings: Settings, ring: Keyring, report: AtRestReport) -> set[str]:
    """Re-encrypt every stored recording with the current key; the key ids still in use."""
    in_use: set[str] = set()
    for rec in _stored(session):
        path = file_of(settings, rec)
        if not rec.encrypted:
            continue
        if not path.is_file():
            report.missing.append(rec.id)
            continue
        try:
            changed = storage.reencrypt_file(path, ring)
        except (OSError, storage.StorageError) as exc:
            report.failed.append({"id": rec.id, "reason": str(exc)})
            kid = storage.key_id_of(path)
            if kid:
                in_use.add(kid)  # keep the key that may still open it
            continue
        if changed:
            rec.stored_bytes = os.path.getsize(path)
            session.commit()
            report.done += 1
        else:
            report.already += 1
    return in_use


VOICE_MESSAGES = "ivr-*.wav"  # what an IVR record node leaves (ARI stored recordings, ivr.runner)


def seal_voice_messages(settings: Settings, *, now: float, older_than: float = 120.0) -> int:
    """Encrypt the voice messages callers left through an IVR (``ivr-<hex>.wav`` beside the
    recordings, written by Asterisk in clear) once Asterisk has finished them; the plain file goes.
    Returns how many were sealed. Read back with :func:`open_voice_message`."""
    root = settings.recordings_dir
    if not root.is_dir():
        return 0
    sealed = 0
    ring: Keyring | None = None
    for plain in sorted(root.glob(VOICE_MESSAGES)):
        try:
            if now - plain.stat().st_mtime < older_than:
                continue  # maybe still being recorded
            ring = ring or keyring(settings)
            storage.encrypt_file(plain, plain.with_name(plain.name + ".enc"), ring)
            plain.unlink()
            sealed += 1
        except (OSError, storage.StorageError):
            log.exception("voice message %s could not be sealed; trying again at the next pass", plain.name)
    return sealed


def voice_message_files(settings: Settings, name: str) -> list[Path]:
    """The files of one IVR voice message (by the name the callback keeps), plain or sealed."""
    if not name.startswith("ivr-") or "/" in name or "\\" in name:
        return []
    base = settings.recordings_dir / f"{name}.wav"
    return [p for p in (base, base.with_name(base.name + ".enc")) if p.is_file()]


def open_voice_message(settings: Settings, name: str) -> BinaryIO:
    """A voice message's audio through the decrypting reader."""
    files = voice_message_files(settings, name)
    if not files:
        raise FileNotFoundError(name)
    path = files[-1]
    return storage.open_audio(path, path.suffix == ".enc", keyring(settings))


def keys_on_disk(settings: Settings) -> set[str]:
    """The key ids the encrypted files in the recordings folder name (one header read each)."""
    found: set[str] = set()
    root = settings.recordings_dir
    if root.is_dir():
        for path in [*root.glob("*/*/*/*.enc"), *root.glob("ivr-*.wav.enc")]:
            try:
                kid = storage.key_id_of(path)
            except OSError:
                continue
            if kid:
                found.add(kid)
    return found


def rotate_key(session: Session, settings: Settings, *, actor: str) -> AtRestReport:
    """A new current key; every encrypted recording re-encrypted with it; the old keys retired
    once nothing needs them (a file that failed keeps its key in the keyring)."""
    keyring(settings)  # made on first use, with any legacy key carried over
    ring = rotate(settings.keyring_path)
    report = AtRestReport(key_id=ring.current)
    in_use = reencrypt_all(session, settings, ring, report)
    for message in settings.recordings_dir.glob("ivr-*.wav.enc"):
        try:
            report.done += storage.reencrypt_file(message, ring)
        except (OSError, storage.StorageError) as exc:
            report.failed.append({"id": message.name, "reason": str(exc)})
    # A recording registered while this ran may have been sealed with the key that was current
    # when it started: keep every key a file on disk still names.
    in_use |= keys_on_disk(settings)
    report.retired = retire(settings.keyring_path, keep=in_use)
    audit(session, actor, "recordings.rotate_key", None, key_id=ring.current, **_counts(report))
    return report


def _counts(report: AtRestReport) -> dict[str, int]:
    return {
        "done": report.done,
        "already": report.already,
        "missing": len(report.missing),
        "failed": len(report.failed),
    }
