"""The callers' recorded survey comments through the API (both databases): supervisors and QA list
the scores of a period with each comment's address and play the comment, decrypted from its sealed
file (never in clear on disk), each play audited; agents may not; a comment no longer kept is 410."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from ivr.survey import save_score
from recordings.at_rest import seal_voice_messages
from tests.utils import PASSWORD, login
from warmline.app import create_app

WHEN = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
VOICE = b"RIFF....WAVEfmt " + bytes(range(256)) * 8  # the bytes Asterisk wrote, whatever they are
COMMENT = "ivr-" + "a" * 32


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        auth.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        auth.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
        auth.create_user(s, "qa1", Role.qa, PASSWORD, actor="test")
        save_score(s, call_ref="attempt-1", score=2, agent="mei", campaign="flu", comment=COMMENT, now=WHEN)
        save_score(s, call_ref="in-1", score=5, agent="mei", line="community-hotline", now=WHEN)
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / f"{COMMENT}.wav").write_bytes(VOICE)
    assert seal_voice_messages(settings, now=WHEN.timestamp() + 10**9) == 1
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_reviewers_list_and_play_the_comments_and_agents_may_not(
    client: TestClient, settings: Settings, db: Database
) -> None:
    assert not (settings.recordings_dir / f"{COMMENT}.wav").exists(), "sealed at rest"
    period = {"from": "2026-11-24", "to": "2026-11-24"}
    listed = client.get("/api/workforce/surveys", params=period, headers=login(client, "boss"))
    assert listed.status_code == 200, listed.text
    rows = {r["call_ref"]: r for r in listed.json()["surveys"]}
    assert rows["in-1"]["comment_url"] is None
    url = rows["attempt-1"]["comment_url"]
    assert (rows["attempt-1"]["score"], rows["attempt-1"]["campaign"]) == (2, "flu")
    for reviewer in ("boss", "qa1"):
        played = client.get(url, headers=login(client, reviewer))
        assert played.status_code == 200 and played.content == VOICE
    assert client.get(url, headers=login(client, "mei")).status_code == 403
    assert (
        client.get("/api/workforce/surveys", params=period, headers=login(client, "mei")).status_code == 403
    )
    with db.session() as s:
        plays = s.scalars(select(AuditEntry).where(AuditEntry.action == "survey.comment.play")).all()
        assert sorted(p.actor for p in plays) == ["boss", "qa1"]


def test_no_comment_is_404_and_a_purged_one_410(client: TestClient, settings: Settings) -> None:
    period = {"from": "2026-11-24", "to": "2026-11-24"}
    rows = client.get("/api/workforce/surveys", params=period, headers=login(client, "qa1")).json()["surveys"]
    ids = {r["call_ref"]: r["id"] for r in rows}
    headers = login(client, "qa1")
    assert client.get(f"/api/workforce/surveys/{ids['in-1']}/comment", headers=headers).status_code == 404
    for path in settings.recordings_dir.glob(f"{COMMENT}.wav*"):
        path.unlink()
    assert (
        client.get(f"/api/workforce/surveys/{ids['attempt-1']}/comment", headers=headers).status_code == 410
    )
