"""Privacy in the lab: a real call, recorded through the agent bridge, is stored encrypted (the
key in a 0600 keyring outside the recordings folder); the API plays it back decrypted, the same
audio as registered; after `rotate-key` it still plays; erasing the callee's number deletes it.

The demo's machinery makes the call (as tests/integration/test_recording_chain_lab.py does): a
headless softphone agent (`warmline.demo_agent.DemoDesk`) and the demo campaign's dialer loop, for
one contact whose lab callee (last digit 6) presses 0 and is bridged to the agent. A private lab
(slot "privacy" in tests/lab.py) on SQLite; the database side of privacy runs on both kinds in
tests/unit/test_privacy.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db import Database
from core.keyring import load_keyring
from core.secrets import get_secret
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus, Contact
from recordings.at_rest import rotate_key
from recordings.models import CallRecording
from tests.conftest import on_database
from tests.lab import lab_ports, private_lab
from warmline.app import create_app
from warmline.demo import ensure_demo_users
from warmline.demo_agent import DemoDesk
from warmline.demo_campaign import ACTOR, FLOW, demo_spec, run_campaign
from warmline.migrate import upgrade
from warmline.privacy import service as privacy

pytestmark = pytest.mark.integration
PORTS = lab_ports("privacy")
CALLEE = "13800000026"  # last digit 6: presses 0 and talks to the agent


def _played(client: TestClient, headers: dict[str, str], rec_id: str) -> bytes:
    audio = client.get(f"/api/recordings/{rec_id}/audio", headers=headers)
    assert audio.status_code == 200, audio.text
    body: bytes = audio.content
    assert body[:4] == b"RIFF"
    return body


@on_database("sqlite")
def test_a_recorded_lab_call_is_encrypted_at_rest_and_plays_back(db_url: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    upgrade(db_url)
    with private_lab(
        var, PORTS, database_url=db_url, topic_prefix=f"warmline-test-{uuid.uuid4().hex[:8]}"
    ) as settings:
        db = Database(settings.db_url)
        try:
            ensure_demo_users(settings, db)
            name = "privacy-" + uuid.uuid4().hex[:6]
            with DemoDesk(settings, db, flow=FLOW, out=None) as desk:
                assert desk.ready, desk.problem
                with db.session() as session:
                    svc.create_campaign(session, svc.build_spec(demo_spec(name)), actor=ACTOR)
                csv = f"姓名,电话\n杨磊,{CALLEE}\n".encode()
                assert import_list(db, name, io.BytesIO(csv), f"{name}.csv", actor=ACTOR).accepted == 1
                with db.session() as session:
                    svc.set_status(session, name, CampaignStatus.running, actor=ACTOR)
                quick = settings.model_copy(update={"dialer_ring_timeout": 15})
                asyncio.run(run_campaign(quick, db, name, out=None, limit_seconds=240))

            with db.session() as session:
                contact = session.scalars(select(Contact)).one()
                rec = session.scalars(
                    select(CallRecording).where(CallRecording.contact_id == contact.id)
                ).one()
                rec_id, sha, stored = rec.id, rec.sha256, settings.recordings_dir / rec.path
                assert rec.encrypted and rec.path.endswith(".wav.enc")
            data = stored.read_bytes()
            assert b"RIFF" not in data[:64] and stored.stat().st_mode & 0o077 == 0
            assert not list(settings.recordings_dir.rglob("*.wav"))  # no plaintext left behind
            keyring = settings.keyring_path
            assert keyring.stat().st_mode & 0o777 == 0o600
            assert not keyring.resolve().is_relative_to(settings.recordings_dir.resolve())

            # the administrator hears every recording; a QA reviewer only those drawn into a sample
            admin_password = get_secret(settings.var_dir, "demo_password_admin")
            with TestClient(create_app(settings, db)) as client:
                token = client.post("/api/auth/token", json={"username": "admin", "password": admin_password})
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                assert hashlib.sha256(_played(client, headers, rec_id)).hexdigest() == sha
                first_key = load_keyring(keyring).current
                with db.session() as session:
                    report = rotate_key(session, settings, actor="test")
                assert report.done == 1 and first_key in report.retired
                assert stored.read_bytes() != data  # re-encrypted under the new key
                assert hashlib.sha256(_played(client, headers, rec_id)).hexdigest() == sha

            with db.session() as session:
                found = privacy.find(session, privacy.e164_of(CALLEE, settings.default_region))
                counts = privacy.erase(session, settings, found, actor="test", dry_run=False)
            assert counts["recordings"] == 1 and counts["contacts"] == 1 and not stored.exists()
        finally:
            db.dispose()
