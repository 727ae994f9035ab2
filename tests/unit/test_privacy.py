"""Privacy by default, on SQLite and PostgreSQL: recordings encrypted at rest with keys kept apart
(0600 keyring), rotated and applied to old plaintext; retention with a purpose purged by the
service's own worker on a virtual clock; personal prompts not world-readable and purged; one
person's data exported and erased by phone number, the audit log saying that, not whose."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from core.audit import AuditEntry, AuditNote
from core.db import Database
from core.features import ServiceContext
from core.keyring import LEGACY_ID, load_keyring
from core.secrets import get_secret
from core.settings import Settings
from dialer.campaigns import CampaignSpec, create_campaign
from dialer.models import Attempt, Contact, DncGlobal
from dialer.welfare.models import Alert
from dialer.welfare.service import resolve
from ivr.plugin import prompt_retention_worker
from ivr.tts import PromptCache, purge_personal
from recordings import service, storage
from recordings.models import CallRecording, RecordingStatus
from recordings.retention import retention_worker
from tests.unit.test_ivr_tts import ToneEngine
from tests.utils.cli import CliRunner, run

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PHONE = "+8613800138000"


def tone(path: Path, seconds: float = 2.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sf.write(str(path), (rng.standard_normal((int(8000 * seconds), 2)) * 300).astype(np.int16), 8000)
    return path


def register(db: Database, settings: Settings, src: Path, **facts: object) -> str:
    args: dict[str, object] = {"campaign_id": None, "contact_id": None, "agent": "li", "started_at": T0}
    args.update(facts)
    with db.session() as s:
        rec = service.register_recording(
            s,
            settings,
            src,
            ended_at=None,
            source="agent-bridge",
            **args,  # type: ignore[arg-type]
        )
        return rec.id


def cli_settings(cli: CliRunner) -> Settings:
    return Settings(var_dir=Path(os.environ["WARMLINE_VAR_DIR"]), _env_file=None)


# --- encryption at rest ---------------------------------------------------------------------------


def test_keyring_is_apart_0600_and_carries_the_legacy_key(tmp_path: Path) -> None:
    var = tmp_path / "var"
    old = get_secret(var, "recordings_key", nbytes=32)  # what an older warmline kept beside the data
    settings = Settings(var_dir=var, _env_file=None)
    ring = load_keyring(settings.keyring_path, var_dir=var)
    assert settings.keyring_path == var / "keys" / "keyring.json"
    assert not settings.keyring_path.resolve().is_relative_to(settings.recordings_dir.resolve())
    assert settings.keyring_path.stat().st_mode & 0o777 == 0o600
    assert ring.keys[LEGACY_ID] == storage.derive_key(old) and ring.current != LEGACY_ID
    # a file of the first format (no key id) still opens
    src = tone(tmp_path / "a.wav")
    legacy = tmp_path / "legacy.enc"
    header = storage.HEADER_V1.pack(storage.MAGIC_V1, storage.CHUNK, src.stat().st_size, b"\0" * 8)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    body = AESGCM(storage.derive_key(old)).encrypt(
        b"\0" * 8 + b"\0\0\0\0", src.read_bytes(), header + (0).to_bytes(4, "big") + b"\x01"
    )
    legacy.write_bytes(header + body)
    with storage.open_audio(legacy, True, ring) as f:
        assert f.read() == src.read_bytes()
    settings.keyring_path.chmod(0o644)
    with pytest.raises(Exception, match="readable by others"):
        load_keyring(settings.keyring_path)


def test_rotate_key_and_encrypt_existing_by_command(db: Database, cli: CliRunner, tmp_path: Path) -> None:
    settings = cli_settings(cli)
    settings.database_url = os.environ["WARMLINE_DATABASE_URL"]
    settings.recordings_encrypt = False  # as an older warmline stored them
    srcs = [tone(tmp_path / f"t{i}.wav", seed=i) for i in range(3)]
    ids = [register(db, settings, s) for s in srcs]
    with db.session() as s:
        assert not any(r.encrypted for r in s.scalars(select(CallRecording)))

    report = json.loads(run(cli, "privacy", "encrypt-existing", "--json"))
    assert (report["done"], report["already"], report["failed"]) == (3, 0, [])
    with db.session() as s:
        recs = [s.get(CallRecording, i) for i in ids]
        for rec, src in zip(recs, srcs, strict=True):
            assert rec is not None and rec.encrypted and rec.path.endswith(".wav.enc")
            assert not (settings.recordings_dir / rec.path.removesuffix(".enc")).exists()  # no clear copy
            with service.open_recording(settings, rec) as f:
                assert f.read() == src.read_bytes()
    first_key = load_keyring(settings.keyring_path).current

    report = json.loads(run(cli, "privacy", "rotate-key", "--json"))
    ring = load_keyring(settings.keyring_path)
    assert report["done"] == 3 and report["key_id"] == ring.current != first_key
    assert first_key in report["retired_keys"] and set(ring.keys) == {ring.current}
    with db.session() as s:
        for rid, src in zip(ids, srcs, strict=True):
            rec = s.get(CallRecording, rid)
            assert rec is not None
            assert storage.key_id_of(settings.recordings_dir / rec.path) == ring.current
            with service.open_recording(settings, rec) as f:
                assert f.read() == src.read_bytes()
        assert service.verify(s, settings, actor="test").problems == []
        actions = [e.action for e in s.scalars(select(AuditEntry))]
    assert "recordings.encrypt_existing" in actions and "recordings.rotate_key" in actions

    # a file sealed with the current key by a registration that has not committed yet: its key is
    # kept by the next rotation, so the file stays readable
    late = settings.recordings_dir / "2026/11/24/late.wav.enc"
    storage.encrypt_file(srcs[0], late, load_keyring(settings.keyring_path))
    kept = load_keyring(settings.keyring_path).current
    report = json.loads(run(cli, "privacy", "rotate-key", "--json"))
    assert kept not in report["retired_keys"] and kept in load_keyring(settings.keyring_path).keys


def test_large_recording_streams_in_chunks(tmp_path: Path) -> None:
    """A 64 MiB file encrypts and re-encrypts chunk by chunk (the reader never holds it whole)."""
    settings = Settings(var_dir=tmp_path / "var", _env_file=None)
    ring = load_keyring(settings.keyring_path)
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with src.open("wb") as f:
        for _ in range(64):
            f.write(block)
    enc = tmp_path / "big.enc"
    storage.encrypt_file(src, enc, ring)
    assert enc.stat().st_mode & 0o077 == 0
    with storage.open_audio(enc, True, ring) as f:
        f.seek(40 << 20)
        assert f.read(1 << 20) == block
        assert f.seek(0, 2) == 64 << 20


# --- retention with a purpose, purged by the service ----------------------------------------------


class Passes:
    """The worker's wait: lets `n` passes run, then stops the worker."""

    def __init__(self, n: int) -> None:
        self.left = n

    async def __call__(self, seconds: float) -> None:
        self.left -= 1
        if self.left <= 0:
            raise asyncio.CancelledError


async def test_retention_worker_purges_by_the_campaigns_purpose(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    spec = CampaignSpec.model_validate(
        {"name": "flu-2026", "retention": {"purpose": "流感疫苗接种回访质检", "recordings_days": 30}}
    )
    with db.session() as s:
        cid = create_campaign(s, spec, actor="test").id
    old = register(db, settings, tone(tmp_path / "o.wav", seed=1), campaign_id=cid, started_at=T0)
    new = register(
        db, settings, tone(tmp_path / "n.wav", seed=2), campaign_id=cid, started_at=T0 + timedelta(days=20)
    )
    other = register(db, settings, tone(tmp_path / "x.wav", seed=3), started_at=T0)  # no campaign: kept

    now = T0 + timedelta(days=35)  # the virtual clock
    worker = retention_worker(clock=lambda: now, sleep=Passes(1))
    with pytest.raises(asyncio.CancelledError):
        await worker(ServiceContext(settings, db, None))

    with db.session() as s:
        gone, kept, free = (s.get(CallRecording, i) for i in (old, new, other))
        assert gone is not None and gone.status is RecordingStatus.purged
        assert not (settings.recordings_dir / gone.path).exists()
        assert kept is not None and kept.status is RecordingStatus.ok
        assert free is not None and free.status is RecordingStatus.ok
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "recording.purge")).one()
        assert (entry.actor, entry.target) == ("retention", old)
        assert entry.detail["purpose"] == "流感疫苗接种回访质检" and entry.detail["retention_days"] == 30


def test_retention_shows_with_the_campaign(cli: CliRunner, tmp_path: Path) -> None:
    yaml = tmp_path / "c.yaml"
    yaml.write_text(
        "kind: agent\nretention: {purpose: 质检与投诉核查, recordings_days: 90}\n", encoding="utf-8"
    )
    run(cli, "campaign", "create", "flu-1", "--from", str(yaml))
    shown = json.loads(run(cli, "campaign", "show", "flu-1", "--json"))
    assert shown["retention"] == {"purpose": "质检与投诉核查", "recordings_days": 90}
    assert "质检与投诉核查" in run(cli, "campaign", "show", "flu-1")


def test_retention_needs_a_purpose() -> None:
    with pytest.raises(ValueError, match="purpose"):
        CampaignSpec.model_validate({"name": "x1", "retention": {"recordings_days": 30}})


async def test_personal_prompts_are_sealed_not_world_readable_and_purged(
    db: Database, settings: Settings
) -> None:
    engine = ToneEngine()
    cache = PromptCache.for_settings(settings, engine)
    public = cache.speak_sync("您好，这里是社区卫生服务中心。")
    live = cache.speak_sync("张三您好", personal=True)
    sealed = cache.sealed_path("张三您好")
    assert public.stat().st_mode & 0o777 == 0o644
    assert live.stat().st_mode & 0o777 == 0o640 and (cache.root / "personal").stat().st_mode & 0o007 == 0
    assert sealed.stat().st_mode & 0o777 == 0o600 and b"RIFF" not in sealed.read_bytes()  # encrypted at rest
    made = live.stat().st_mtime
    # unused for over half an hour: the plain copy goes, the sealed one stays; the next call of the
    # contact opens the sealed copy (no new render) and plays the same audio
    plain = live.read_bytes()
    assert purge_personal(cache.root, older_than_s=24 * 3600, now=made + 3600) == 1
    assert not live.exists() and sealed.exists()
    assert await cache.speak("张三您好", personal=True) == live and live.read_bytes() == plain
    assert len(engine.calls) == 2
    # a day and an hour after it was made, the service's worker (clock injected) deletes both
    now = datetime.fromtimestamp(sealed.stat().st_mtime + 25 * 3600, UTC)
    worker = prompt_retention_worker(clock=lambda: now, sleep=Passes(1))
    with pytest.raises(asyncio.CancelledError):
        await worker(ServiceContext(settings, db, None))
    assert not live.exists() and not sealed.exists() and public.exists()


# --- one person's data: export and erase ----------------------------------------------------------


def _person(db: Database, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    """Two campaigns call PHONE; another person is in one of them."""
    with db.session() as s:
        a = create_campaign(s, CampaignSpec(name="welfare-a", elder_welfare=True), actor="t")
        b = create_campaign(s, CampaignSpec(name="welfare-b"), actor="t")
        mine = [
            Contact(campaign_id=c.id, phone_e164=PHONE, name="王秀英", fields={"社区": "东城"})
            for c in (a, b)
        ]
        other = Contact(campaign_id=a.id, phone_e164="+8613900139000", name="李四")
        s.add_all([*mine, other])
        s.flush()
        att = Attempt(
            id="11111111-1111-4111-8111-111111111111", campaign_id=a.id, contact_id=mine[0].id, attempt_no=1,
            node="lab", outcome="agent", answers={"health": "unwell", "symptoms": "膝盖疼"}, note="女儿住附近",
        )  # fmt: skip
        other_att = Attempt(
            id="22222222-2222-4222-8222-222222222222", campaign_id=a.id, contact_id=other.id, attempt_no=1,
            node="lab", outcome="agent",
        )  # fmt: skip
        s.add_all([att, other_att])
        alert = Alert(
            campaign_id=a.id,
            contact_id=mine[0].id,
            attempt_id=att.id,
            kind="help",
            phone_masked="138****8000",
        )
        s.add(alert)
        s.add(DncGlobal(phone_e164=PHONE, source="test", reason="opted out", added_by="t"))
        s.flush()
        resolve(s, alert.id, actor="sup", resolution="已联系王秀英的女儿上门")
        ids: dict[str, Any] = {"a": a.id, "contact": mine[0].id, "other": other.id, "alert": alert.id}
    ids["rec"] = register(
        db, settings, tone(tmp_path / "p.wav", seed=7), campaign_id=ids["a"], contact_id=ids["contact"],
        attempt_id="11111111-1111-4111-8111-111111111111",
    )  # fmt: skip
    ids["other_rec"] = register(db, settings, tone(tmp_path / "q.wav", seed=8), contact_id=ids["other"])
    return ids


def test_export_and_erase_one_person(db: Database, cli: CliRunner, tmp_path: Path) -> None:
    settings = cli_settings(cli)
    settings.database_url = os.environ["WARMLINE_DATABASE_URL"]
    ids = _person(db, settings, tmp_path)

    data = json.loads(
        run(
            cli,
            "privacy",
            "export",
            "--phone",
            "138 0013 8000",
            "--audio-dir",
            str(tmp_path / "out"),
            "--json",
        )
    )
    assert {c["campaign"] for c in data["contacts"]} == {"welfare-a", "welfare-b"}
    assert data["form_answers"][0]["answers"]["symptoms"] == "膝盖疼"
    assert data["alerts"][0]["note"] == "已联系王秀英的女儿上门"
    wav = Path(data["audio_files"][0])
    assert wav.read_bytes() == (tmp_path / "p.wav").read_bytes()  # decrypted through the one reader
    assert wav.stat().st_mode & 0o077 == 0

    counts = {"contacts": 2, "attempts": 1, "recordings": 1, "form_answers": 1, "alerts": 1}
    dry = json.loads(run(cli, "privacy", "erase", "--phone", "13800138000", "--dry-run", "--json"))
    assert dry == counts  # exactly these keys
    with db.session() as s:
        assert len(s.scalars(select(Contact).where(Contact.phone_e164 == PHONE)).all()) == 2

    erased = json.loads(run(cli, "privacy", "erase", "--phone", "+86 138-0013-8000", "--json"))
    assert erased == counts
    with db.session() as s:
        assert s.scalars(select(Contact).where(Contact.phone_e164 == PHONE)).all() == []
        assert s.get(Attempt, "11111111-1111-4111-8111-111111111111") is None
        assert s.get(CallRecording, ids["rec"]) is None
        assert s.get(Alert, ids["alert"]) is None
        assert s.scalars(select(AuditNote)).all() == []  # the resolution note went with the alert
        # the other person is untouched; the opt-out stays so they are never called again
        assert s.get(Contact, ids["other"]) is not None and s.get(CallRecording, ids["other_rec"]) is not None
        assert s.scalars(select(DncGlobal)).one().phone_e164 == PHONE
        log = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erase")).one()
        assert log.actor == "cli" and log.target is None and log.detail["contacts"] == 2
        every_entry = json.dumps(
            [(e.target, e.detail) for e in s.scalars(select(AuditEntry))], ensure_ascii=False
        )
    for trace in ("13800138000", "王秀英", "已联系"):
        assert trace not in every_entry  # the log says an erasure happened, not whose
    recs = list((settings.recordings_dir).rglob("*.enc"))
    assert len(recs) == 1  # only the other person's recording is left on disk

    again = json.loads(run(cli, "privacy", "erase", "--phone", "13800138000", "--json"))
    assert again == dict.fromkeys(counts, 0)
    run(cli, "privacy", "erase", "--phone", "not-a-number", code=2)


def test_analyze_a_stored_recording_through_the_reader(db: Database, cli: CliRunner, tmp_path: Path) -> None:
    """`warmline recordings analyze <id>` reads the encrypted file through the one reader (never
    decrypted to disk) and is audited."""
    settings = cli_settings(cli)
    settings.database_url = os.environ["WARMLINE_DATABASE_URL"]
    rid = register(db, settings, tone(tmp_path / "a.wav", seconds=3.0, seed=4))
    before = set(tmp_path.rglob("*.wav"))
    figures = json.loads(run(cli, "recordings", "analyze", rid, "--json"))
    assert figures["channels"] == 2 and figures["duration_s"] == pytest.approx(3.0, abs=0.05)
    assert set(tmp_path.rglob("*.wav")) == before  # no plain copy was written
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "recording.analyze")).one()
        assert (entry.actor, entry.target) == ("cli", rid)


async def test_voice_messages_are_sealed_by_the_worker_and_erased_with_the_caller(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A caller's IVR voice message (Asterisk writes it in clear) is encrypted by the retention
    worker once finished, exported through the reader, and erased with the caller's number."""
    with db.session() as s:
        cb = create_campaign(s, CampaignSpec(name="hotline-callbacks"), actor="t")
        s.add(Contact(campaign_id=cb.id, phone_e164=PHONE, fields={"message": "ivr-0a1b2c"}))
    settings.recordings_dir.mkdir(parents=True)
    plain = tone(settings.recordings_dir / "ivr-0a1b2c.wav", seconds=1.0, seed=9)
    audio = plain.read_bytes()
    fresh = tone(settings.recordings_dir / "ivr-ffffff.wav", seconds=1.0, seed=10)
    os.utime(fresh, (plain.stat().st_mtime + 600, plain.stat().st_mtime + 600))
    now = datetime.fromtimestamp(plain.stat().st_mtime + 300, UTC)  # the first done, the other not yet
    with pytest.raises(asyncio.CancelledError):
        await retention_worker(clock=lambda: now, sleep=Passes(1))(ServiceContext(settings, db, None))
    sealed = settings.recordings_dir / "ivr-0a1b2c.wav.enc"
    assert not plain.exists() and sealed.exists() and b"RIFF" not in sealed.read_bytes()[:64]
    assert fresh.exists()  # maybe still being recorded: left alone

    from warmline.privacy import service as privacy

    with db.session() as s:
        found = privacy.find(s, PHONE)
        assert [p.read_bytes() for p in privacy.export_audio(settings, found, tmp_path / "out")] == [audio]
        assert privacy.erase(s, settings, found, actor="t", dry_run=False)["recordings"] == 1
    assert not sealed.exists()


def test_erasure_takes_the_callers_survey_comments_and_keeps_the_scores(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The comment a caller recorded after the post-call survey (an outbound call to them, an inbound
    call from them) is theirs: exported, then erased with their number (the files, sealed or not,
    and the row's link), audited as ``survey_comments``; the scores stay for the agents' reports;
    another caller's comment is untouched."""
    from hotline.models import InboundCallRecord
    from ivr.models import CallSurvey
    from warmline.privacy import service as privacy

    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    with db.session() as s:
        c = create_campaign(s, CampaignSpec(name="flu-followup"), actor="t")
        mine = Contact(campaign_id=c.id, phone_e164=PHONE, name="王秀英")
        other = Contact(campaign_id=c.id, phone_e164="+8613900139000", name="李四")
        s.add_all([mine, other])
        s.flush()
        s.add_all([
            Attempt(id="a-mine", campaign_id=c.id, contact_id=mine.id, attempt_no=1, node="lab", outcome="agent"),
            Attempt(id="a-other", campaign_id=c.id, contact_id=other.id, attempt_no=1, node="lab", outcome="agent"),
            InboundCallRecord(channel_id="in-mine", number="13800138000", line="community-hotline",
                              arrived_at=now, outcome="agent", agent="mei"),
        ])  # fmt: skip
        s.flush()
        s.add_all([
            CallSurvey(call_ref="a-mine", agent="mei", campaign="flu-followup", score=5,
                       comment_recording="ivr-0000a1", answered_at=now),
            CallSurvey(call_ref="in-mine", agent="lin", line="community-hotline", score=2,
                       comment_recording="ivr-0000b2", answered_at=now),
            CallSurvey(call_ref="a-other", agent="mei", campaign="flu-followup", score=4,
                       comment_recording="ivr-0000c3", answered_at=now),
        ])  # fmt: skip
    settings.recordings_dir.mkdir(parents=True)
    outbound = tone(settings.recordings_dir / "ivr-0000a1.wav", seconds=0.5, seed=1)
    inbound = settings.recordings_dir / "ivr-0000b2.wav.enc"  # as the retention worker seals it
    inbound.write_bytes(b"sealed")
    theirs = tone(settings.recordings_dir / "ivr-0000c3.wav", seconds=0.5, seed=2)

    with db.session() as s:
        found = privacy.find(s, PHONE)
        data = privacy.export(s, settings, found, actor="t")
        assert sorted(v["comment"] for v in data["survey_comments"]) == ["ivr-0000a1", "ivr-0000b2"]
        assert privacy.erase(s, settings, found, actor="t", dry_run=False)["recordings"] == 2
    assert not outbound.exists() and not inbound.exists(), "the caller's voice is gone"
    assert theirs.exists(), "another caller's comment stays"
    with db.session() as s:
        rows = {v.call_ref: (v.score, v.comment_recording) for v in s.scalars(select(CallSurvey))}
        assert rows == {"a-mine": (5, None), "in-mine": (2, None), "a-other": (4, "ivr-0000c3")}
        log = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erase")).one()
        assert log.detail["survey_comments"] == 2 and log.target is None
        assert "ivr-0000a1" not in json.dumps(log.detail)
