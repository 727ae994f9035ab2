"""The registry on SQLite and PostgreSQL: register (analysed), layout, encryption, verify, purge,
retention; the CLI (`warmline recordings ...`, `warmline qa sample`); playback over HTTP, audited."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from dialer.models import Campaign
from recordings import service
from recordings.models import CallRecording, RecordingStatus
from recordings.qa.models import QaItem, QaReview, QaSample, SampleKind
from tests import audio_fixtures as af
from tests.utils import PASSWORD, login
from tests.utils.cli import CliRunner, run
from warmline.app import create_app
from warmline.cli import app as cli_app

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday of 2026-W48, 10:00 in Shanghai


@pytest.fixture(scope="module")
def labelled_call(tmp_path_factory: pytest.TempPathFactory) -> af.LabelledCall:
    """A realistic stereo call: espeak-ng speech on each side, noise, overtalk and dead air."""
    if not af.have_tools():
        pytest.fail("espeak-ng and sox are needed (make test installs them)")
    folder = tmp_path_factory.mktemp("call")
    bank = af.ClipBank(folder / "clips")
    placements, end, clicks = af.scripted_call(bank)
    return af.render(folder / "call.wav", placements, end, clicks=clicks, seed=5)


def tone_call(path: Path, seconds: float = 4.0, seed: int = 0) -> Path:
    """A small stereo 8 kHz file (distinct content per seed): fast where speech does not matter."""
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal((int(8000 * seconds), 2)) * 300).astype(np.int16)
    sf.write(str(path), data, 8000, subtype="PCM_16")
    return path


def make_campaign(db: Database, name: str = "welfare", welfare: bool = True) -> int:
    with db.session() as s:
        c = Campaign(
            name=name, kind="agent", elder_welfare=welfare, timezone="Asia/Shanghai", windows={}, retry={},
            max_attempts=3, daily_cap=1, rolling_cap=1, amd="off", max_channels=10, calls_per_second=1.0,
            allowed_countries=["CN"], created_by="test",
        )  # fmt: skip
        s.add(c)
        s.flush()
        return c.id


def test_register_analyses_and_lays_out_by_date(
    db: Database, settings: Settings, labelled_call: af.LabelledCall
) -> None:
    cid = make_campaign(db)
    with db.session() as s:
        rec = service.register_recording(
            s, settings, labelled_call.path, campaign_id=cid, contact_id=None, agent="li",
            started_at=T0, ended_at=None, source="agent-bridge",
        )  # fmt: skip
        rid = rec.id
    with db.session() as s:
        got = s.get(CallRecording, rid)
        assert got is not None
        rec = got
        # encrypted at rest by default
        assert rec.path == f"2026/11/24/{rid}.wav.enc" and (settings.recordings_dir / rec.path).is_file()
        assert labelled_call.path.is_file()  # copied, not moved
        assert (rec.channels, rec.sample_rate, rec.status) == (2, 8000, RecordingStatus.ok)
        assert rec.duration_s == pytest.approx(labelled_call.duration_s, abs=0.01)
        assert rec.size_bytes == labelled_call.path.stat().st_size < (rec.stored_bytes or 0)
        assert len(rec.sha256 or "") == 64 and rec.encrypted
        assert b"RIFF" not in (settings.recordings_dir / rec.path).read_bytes()[:64]
        assert (settings.recordings_dir / rec.path).stat().st_mode & 0o077 == 0
        a = rec.analytics
        assert a is not None and a["file"] == rid
        truth = labelled_call.truth()
        assert a["talk_s"]["agent"] == pytest.approx(truth.talk_agent_s, abs=1.5)
        assert a["longest_silence_s"] == pytest.approx(truth.longest_silence_s, abs=1.0)
        assert a["segments"]["agent"] and a["segments"]["customer"]
        assert rec.ended_at == T0 + timedelta(seconds=rec.duration_s or 0)
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "recording.register")).one()
        assert audit.target == rid
        # the same audio again: the same row, nothing copied twice
        again = service.register_recording(
            s, settings, labelled_call.path, campaign_id=cid, contact_id=None, agent="li",
            started_at=T0, ended_at=None, source="import",
        )  # fmt: skip
        assert again.id == rid
        assert len(list((settings.recordings_dir / "2026/11/24").iterdir())) == 1


def test_register_in_place_completes_the_bridges_row(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rid = "5d0c3a52-5e7b-4a43-9c55-0e8f1e2b3c4d"
    where = settings.recordings_dir / "2026/11/24" / f"{rid}.wav"
    where.parent.mkdir(parents=True)
    tone_call(where)
    with db.session() as s:
        s.add(CallRecording(id=rid, path=f"2026/11/24/{rid}.wav", agent="li", started_at=T0, channels=2))
    with db.session() as s:
        rec = service.register_recording(
            s, settings, where, campaign_id=None, contact_id=None, agent="li", started_at=T0,
            ended_at=T0 + timedelta(seconds=4), source="agent-bridge", outcome="opted_out",
        )  # fmt: skip
        assert rec.id == rid and rec.sha256 and rec.outcome == "opted_out"
    with db.session() as s:
        assert len(list(s.scalars(select(CallRecording)))) == 1


def test_two_calls_in_place_that_sound_the_same_keep_their_own_rows(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Two calls' files in the store, the same audio to the sample: each registered under its own
    id and attempt (the content match is an import's); importing that audio again is the first."""
    ids = ["5d0c3a52-5e7b-4a43-9c55-0e8f1e2b3c4d", "9a1e6f0b-2c4d-4e8f-a1b3-c5d7e9f1a2b4"]
    for n, rid in enumerate(ids):
        where = settings.recordings_dir / "2026/11/24" / f"{rid}.wav"
        where.parent.mkdir(parents=True, exist_ok=True)
        tone_call(where, seed=0)
        with db.session() as s:
            rec = service.register_recording(
                s, settings, where, campaign_id=None, contact_id=None, agent="li", started_at=T0,
                ended_at=None, source="agent-bridge", attempt_id=f"att-{n}",
            )  # fmt: skip
            assert (rec.id, rec.attempt_id) == (rid, f"att-{n}")
    with db.session() as s:
        again = service.register_recording(
            s, settings, tone_call(tmp_path / "copy.wav", seed=0), campaign_id=None, contact_id=None,
            agent="li", started_at=T0, ended_at=None, source="import",
        )  # fmt: skip
        assert again.id == ids[0]
        assert len(list(s.scalars(select(CallRecording)))) == 2


def test_unreadable_files_are_refused(db: Database, settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with db.session() as s:
        with pytest.raises(service.RecordingError, match="not a readable audio file"):
            service.register_recording(
                s, settings, bad, campaign_id=None, contact_id=None, agent=None, started_at=T0,
                ended_at=None, source="import",
            )  # fmt: skip
        with pytest.raises(service.RecordingError, match="no such file"):
            service.register_recording(
                s, settings, tmp_path / "nope.wav", campaign_id=None, contact_id=None, agent=None,
                started_at=T0, ended_at=None, source="import",
            )  # fmt: skip


def register_tone(db: Database, settings: Settings, tmp_path: Path, seed: int, **kw: object) -> str:
    args: dict[str, Any] = {"campaign_id": None, "contact_id": None, "agent": "li", "started_at": T0, "ended_at": None,
                  "source": "import"}  # fmt: skip
    args.update(kw)
    with db.session() as s:
        return service.register_recording(
            s, settings, tone_call(tmp_path / f"t{seed}.wav", seed=seed), **args
        ).id


def test_encrypted_at_rest_verify_finds_missing_and_corrupt(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    settings.recordings_encrypt = True
    ids = [register_tone(db, settings, tmp_path, i) for i in range(4)]
    with db.session() as s:
        recs = [s.get(CallRecording, i) for i in ids]
        assert all(r is not None and r.encrypted and r.path.endswith(".wav.enc") for r in recs)
        stored = settings.recordings_dir / recs[0].path  # type: ignore[union-attr]
        assert b"RIFF" not in stored.read_bytes()[:64]
        with service.open_recording(settings, recs[0]) as f:  # type: ignore[arg-type]
            assert f.read() == (tmp_path / "t0.wav").read_bytes()
        report = service.verify(s, settings, actor="test")
    assert (report.checked, report.ok, report.problems) == (4, 4, [])
    with db.session() as s:
        r1, r2, r3 = (s.get(CallRecording, i) for i in ids[1:])
        (settings.recordings_dir / r1.path).unlink()  # type: ignore[union-attr]
        p2 = settings.recordings_dir / r2.path  # type: ignore[union-attr]
        data = bytearray(p2.read_bytes())
        data[200] ^= 0xFF  # same size, altered
        p2.write_bytes(bytes(data))
        p3 = settings.recordings_dir / r3.path  # type: ignore[union-attr]
        p3.write_bytes(p3.read_bytes()[:-100])  # truncated
        report = service.verify(s, settings, actor="test")
    got = {p.recording_id: (p.status, p.reason) for p in report.problems}
    assert got[ids[1]][0] == "missing" and "no such file" in got[ids[1]][1]
    assert got[ids[2]][0] == "corrupt" and "authentication" in got[ids[2]][1]
    assert got[ids[3]][0] == "corrupt" and "bytes on disk" in got[ids[3]][1]
    assert report.ok == 1
    with db.session() as s:
        assert s.get(CallRecording, ids[1]).status is RecordingStatus.missing  # type: ignore[union-attr]


def test_verify_plain_checksum_and_unreadable_wav(db: Database, settings: Settings, tmp_path: Path) -> None:
    a, b = register_tone(db, settings, tmp_path, 1), register_tone(db, settings, tmp_path, 2)
    with db.session() as s:
        pa = settings.recordings_dir / s.get(CallRecording, a).path  # type: ignore[union-attr]
        pb = settings.recordings_dir / s.get(CallRecording, b).path  # type: ignore[union-attr]
    data = bytearray(pa.read_bytes())
    data[-10] ^= 0x55
    pa.write_bytes(bytes(data))
    pb.write_bytes(b"X" * pb.stat().st_size)  # same size, not a WAV any more
    with db.session() as s:
        report = service.verify(s, settings)
    reasons = {p.recording_id: p.reason for p in report.problems}
    assert "checksum" in reasons[a]
    assert "checksum" in reasons[b]


def test_purge_by_campaign_retention(db: Database, settings: Settings, tmp_path: Path) -> None:
    short, other = make_campaign(db, "short"), make_campaign(db, "long", welfare=False)
    old = register_tone(db, settings, tmp_path, 1, campaign_id=short, started_at=T0 - timedelta(days=40))
    new = register_tone(db, settings, tmp_path, 2, campaign_id=short, started_at=T0 - timedelta(days=5))
    kept = register_tone(db, settings, tmp_path, 3, campaign_id=other, started_at=T0 - timedelta(days=400))
    with db.session() as s:
        service.set_retention(s, short, 30, "test")
        with pytest.raises(service.RecordingError):
            service.set_retention(s, short, 0, "test")
    with db.session() as s:
        dry = service.purge(s, settings, dry_run=True, actor="test", now=T0)
        assert [r["id"] for r in dry.purged] == [old]
        assert (settings.recordings_dir / s.get(CallRecording, old).path).is_file()  # type: ignore[union-attr]
    with db.session() as s:
        done = service.purge(s, settings, dry_run=False, actor="test", now=T0)
        assert [r["id"] for r in done.purged] == [old]
    with db.session() as s:
        rec = s.get(CallRecording, old)
        assert rec is not None and rec.status is RecordingStatus.purged and rec.purged_at is not None
        assert not (settings.recordings_dir / rec.path).exists()
        assert s.get(CallRecording, new).status is RecordingStatus.ok  # type: ignore[union-attr]
        assert s.get(CallRecording, kept).status is RecordingStatus.ok  # type: ignore[union-attr]
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert "recordings.purge.dry_run" in actions and actions.count("recording.purge") == 1
        with pytest.raises(service.RecordingError, match="purged"):
            service.open_recording(settings, rec)
    settings.recordings_retention_days = 300  # the default for campaigns without their own
    with db.session() as s:
        assert [r["id"] for r in service.purge(s, settings, dry_run=False, actor="t", now=T0).purged] == [
            kept
        ]


# --- the command line -------------------------------------------------------------------------


def test_cli_register_verify_purge_and_sample(cli: CliRunner, db: Database, tmp_path: Path) -> None:
    cid = make_campaign(db)
    out = json.loads(run(cli, "recordings", "register", str(tone_call(tmp_path / "x.wav", seed=9)), "--campaign",
                         "welfare", "--agent", "li", "--started", "2026-11-24T10:00:00+08:00", "--json"))  # fmt: skip
    assert out["campaign_id"] == cid and out["path"].startswith("2026/11/24/") and out["duration_s"] == 4.0
    assert "registered" in run(cli, "recordings", "register", str(tone_call(tmp_path / "y.wav", seed=8)),
                               "--agent", "wang", "--started", "2026-11-25T09:00:00")  # fmt: skip
    err = cli.invoke(cli_app, ["recordings", "register", str(tmp_path / "none.wav"), "--agent", "li"])
    assert err.exit_code == 2 and "no such file" in err.output
    err = cli.invoke(cli_app, ["recordings", "register", str(tmp_path / "x.wav"), "--campaign", "nope"])
    assert err.exit_code == 2 and "no such campaign" in err.output
    listed = json.loads(run(cli, "recordings", "list", "--json"))
    assert len(listed) == 2
    verified = json.loads(run(cli, "recordings", "verify", "--json"))
    assert verified["checked"] == 2 and verified["problems"] == []
    (tmp_path / "var" / "recordings" / out["path"]).unlink()
    bad = cli.invoke(cli_app, ["recordings", "verify"])
    assert bad.exit_code == 1 and "missing" in bad.stdout and out["id"] in bad.stdout
    assert "welfare: recordings kept 30 days" in run(cli, "recordings", "retention", "welfare", "30")
    dry = json.loads(run(cli, "recordings", "purge", "--dry-run", "--json"))
    assert dry["dry_run"] is True

    sample = json.loads(run(cli, "qa", "sample", "--period", "2026-W48", "--seed", "5", "--json"))
    assert sample["period"] == "2026-W48" and sample["seed"] == 5 and sample["created"] is True
    assert sample["population"] == 2
    assert {i["agent"] for i in sample["random"]} == {"li", "wang"}  # minimum 2 per agent, 1 call each
    assert all(i["sample_kind"] == "random" and i["reason_text"] for i in sample["random"])
    assert {i["agent"] for i in sample["targeted"]} == {"li", "wang"}  # 4 s calls: very short
    assert all("very short call" in i["reason_text"] for i in sample["targeted"])
    again = json.loads(run(cli, "qa", "sample", "--period", "2026-W48", "--seed", "5", "--json"))
    assert again["created"] is False and again["random"] == sample["random"]
    text = run(cli, "qa", "sample", "--period", "2026-W48", "--seed", "5")
    assert "already drawn" in text and "targeted queue" in text
    err = cli.invoke(cli_app, ["qa", "sample", "--period", "2026-W48", "--seed", "5", "--rate", "0.5"])
    assert err.exit_code == 2 and "other parameters" in err.output
    err = cli.invoke(cli_app, ["qa", "sample", "--period", "week 48"])
    assert err.exit_code == 2 and "ISO week" in err.output
    with db.session() as s:
        from recordings.qa.models import QaItem

        assert len(list(s.scalars(select(QaItem)))) == 4
    assert "Elder welfare call" in run(cli, "qa", "scorecard", "welfare_call")


# --- playback over HTTP -----------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("qa1", Role.qa), ("li", Role.agent), ("wang", Role.agent), ("mgr", Role.manager),
                           ("sup", Role.supervisor), ("qa2", Role.qa)):  # fmt: skip
            auth.create_user(s, name, role, PASSWORD, actor="test")
    with TestClient(create_app(settings, db), headers={"Accept-Language": "en"}) as c:
        yield c


def sample_for_qa(db: Database, recording_id: str) -> None:
    """Draw the recording into a QA sample, as `warmline qa sample` would: QA may hear it now."""
    with db.session() as s:
        sample = QaSample(period="2026-W10", seed=1, starts_at=T0, ends_at=T0, params={}, population=1,
                          created_by="test")  # fmt: skip
        s.add(sample)
        s.flush()
        s.add(QaItem(sample_id=sample.id, recording_id=recording_id, sample_kind=SampleKind.random,
                     agent="li", stratum="li", reason={}, reason_text="drawn"))  # fmt: skip


def plays(db: Database, action: str = "recording.play") -> list[AuditEntry]:
    with db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize("encrypt", [False, True])
def test_audio_streams_with_ranges_and_every_listening_is_audited(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path, encrypt: bool
) -> None:
    settings.recordings_encrypt = encrypt
    rid = register_tone(db, settings, tmp_path, 1)
    plain = (tmp_path / "t1.wav").read_bytes()
    qa, li, wang, mgr = (login(client, n) for n in ("qa1", "li", "wang", "mgr"))
    assert client.get(f"/api/recordings/{rid}/audio", headers=qa).status_code == 404, "not sampled for QA"
    sample_for_qa(db, rid)
    whole = client.get(f"/api/recordings/{rid}/audio", headers=qa)
    assert whole.status_code == 200 and whole.content == plain
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/wav"
    part = client.get(f"/api/recordings/{rid}/audio", headers={**qa, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == plain[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(plain)}"
    tail = client.get(f"/api/recordings/{rid}/audio", headers={**qa, "Range": "bytes=-100"})
    assert tail.content == plain[-100:]
    assert (
        client.get(f"/api/recordings/{rid}/audio", headers={**qa, "Range": "bytes=999999-"}).status_code
        == 416
    )
    entries = plays(db)
    assert [(e.actor, e.target) for e in entries] == [("qa1", rid)]  # one listening, seeks not repeated
    assert client.get(f"/api/recordings/{rid}/audio", headers={**qa, "Range": "bytes=0-"}).status_code == 206
    assert len(plays(db)) == 2  # a new listening from the start
    dl = client.get(f"/api/recordings/{rid}/audio?download=1", headers=qa)
    assert (
        dl.status_code == 200
        and "attachment" in dl.headers["content-disposition"]
        and rid in dl.headers["content-disposition"]
    )
    assert [e.target for e in plays(db, "recording.download")] == [rid]
    # the call's own agent may listen (audited), another agent may not even see it exists
    assert client.get(f"/api/recordings/{rid}/audio", headers=li).status_code == 200
    assert client.get(f"/api/recordings/{rid}/audio", headers=wang).status_code == 404
    assert client.get(f"/api/recordings/{rid}/audio", headers=mgr).status_code == 403
    assert client.get(f"/api/recordings/{rid}/audio").status_code == 401
    assert [e.actor for e in plays(db)] == ["qa1", "qa1", "li"]
    meta = client.get(f"/api/recordings/{rid}", headers=qa).json()
    assert meta["id"] == rid and meta["analytics"]["channels"] == 2
    assert client.get("/api/recordings/not-a-uuid", headers=qa).status_code == 404
    shutil.rmtree(settings.recordings_dir)
    gone = client.get(f"/api/recordings/{rid}/audio", headers=qa)
    assert gone.status_code == 404 and "missing" in gone.text


def test_who_hears_which_recording(
    client: TestClient, db: Database, settings: Settings, tmp_path: Path
) -> None:
    """docs/security-roles.md: QA the sampled ones and those they reviewed, supervisors the escalated
    calls', an agent their own; any other is 404 and missing from their list."""
    plain, escalated = register_tone(db, settings, tmp_path, 1), register_tone(db, settings, tmp_path, 2,
                                                                              escalated=True)  # fmt: skip
    qa, sup, li = (login(client, n) for n in ("qa1", "sup", "li"))

    def hears(who: dict[str, str], rid: str) -> bool:
        listed = (
            {r["id"] for r in client.get("/api/recordings", headers=who).json()} if who is not li else set()
        )
        got: int = client.get(f"/api/recordings/{rid}/audio", headers=who).status_code
        assert got in (200, 404) and (who is li or (got == 200) == (rid in listed))
        return got == 200

    assert not hears(qa, plain) and not hears(qa, escalated), "nothing sampled yet"
    assert hears(sup, escalated) and not hears(sup, plain)
    assert hears(li, plain) and hears(li, escalated), "the agent's own calls"
    sample_for_qa(db, plain)
    assert hears(qa, plain) and hears(login(client, "qa2"), plain), "the queue is every reviewer's"
    assert not hears(qa, escalated)
    with db.session() as s:  # a review by qa1 of a recording no longer in any sample: still theirs
        s.add(QaReview(item_id=s.scalar(select(QaItem.id)), recording_id=escalated, agent="li", reviewer="qa1",
                       scorecard="welfare_call", scorecard_spec={}))  # fmt: skip
    assert hears(qa, escalated) and not hears(login(client, "qa2"), escalated)
