"""Storage: the date layout, and AES-GCM at rest (round trip, seeking, tampering, wrong key)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from recordings import storage

RID = "0b6c8f7e-4b1a-4c3e-9f7a-2d5e6f708192"


def test_layout_by_utc_date_and_uuid_name() -> None:
    shanghai = timezone(timedelta(hours=8))
    when = datetime(2026, 11, 24, 7, 30, tzinfo=shanghai)  # 23:30 UTC the day before
    assert storage.relative_path(RID, when, False) == f"2026/11/23/{RID}.wav"
    assert storage.relative_path(RID, when, True) == f"2026/11/23/{RID}.wav.enc"
    with pytest.raises(ValueError):
        storage.relative_path("13800138000", when, False)  # never a phone number


def wav(path: Path, seconds: float = 3.0) -> Path:
    rng = np.random.default_rng(1)
    sf.write(str(path), (rng.standard_normal((int(8000 * seconds), 2)) * 3000).astype(np.int16), 8000)
    return path


@pytest.mark.parametrize("chunk", [1000, storage.CHUNK])
def test_encryption_round_trip_and_seeking(tmp_path: Path, chunk: int) -> None:
    src = wav(tmp_path / "a.wav")
    plain = src.read_bytes()
    key = storage.derive_key("secret")
    enc = tmp_path / "a.wav.enc"
    storage.encrypt_file(src, enc, key, chunk=chunk)
    assert plain[:64] not in enc.read_bytes()
    with storage.open_audio(enc, True, key) as f:
        assert f.read() == plain
        f.seek(12345)
        assert f.read(5000) == plain[12345:17345]
        assert b"".join(storage.iter_range(f, 999, 2500)) == plain[999:2501]
        f.seek(0)
        assert storage.sha256_of(f)[1] == len(plain)
        f.seek(0)
        info = sf.info(f)
        assert (info.channels, info.samplerate) == (2, 8000)
    assert storage.plain_size(enc, True, key) == len(plain)


def test_empty_file_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    key = storage.derive_key("k")
    storage.encrypt_file(src, tmp_path / "e", key)
    with storage.open_audio(tmp_path / "e", True, key) as f:
        assert f.read() == b""


def test_tampering_truncation_and_wrong_key_are_caught(tmp_path: Path) -> None:
    src = wav(tmp_path / "a.wav")
    key = storage.derive_key("secret")
    enc = tmp_path / "a.enc"
    storage.encrypt_file(src, enc, key, chunk=4096)
    data = bytearray(enc.read_bytes())
    with pytest.raises(storage.StorageError, match="authentication"):
        storage.open_audio(enc, True, storage.derive_key("other")).read()
    data[storage.HEADER.size + 10] ^= 1
    (tmp_path / "flip").write_bytes(bytes(data))
    with pytest.raises(storage.StorageError, match="chunk 0"):
        storage.open_audio(tmp_path / "flip", True, key).read()
    good = enc.read_bytes()
    (tmp_path / "cut").write_bytes(good[: len(good) - 4096 - 16])  # the last chunk dropped
    with pytest.raises(storage.StorageError):
        storage.open_audio(tmp_path / "cut", True, key).read()
    (tmp_path / "junk").write_bytes(os.urandom(100))
    with pytest.raises(storage.StorageError, match="not an encrypted"):
        storage.open_audio(tmp_path / "junk", True, key)
    assert isinstance(storage.open_audio(src, False, None), io.BufferedReader)
    _ = UTC
