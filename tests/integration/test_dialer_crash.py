"""Crash safety against the real lab: the dialer SIGKILLed mid-campaign, and Asterisk restarted
mid-campaign. Afterwards every contact has exactly its attempts (the contacts' counters sum to the
ledger's rows, no attempt number twice), none is lost, every attempt is closed, and no retry came
before its delay. `warmline dialer run` runs as a subprocess, as in production.

Lab on port base 54000 (ARI 62088, SIP 59060, RTP 60000-60999).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.ari import AriClient
from core.db import Database, utcnow
from core.settings import Settings
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState
from tests.lab import private_lab
from warmline.lab import lab_start, lab_status, lab_stop

pytestmark = pytest.mark.integration

PORT_BASE = 54000
RETRY_SECONDS = 20
WARMLINE = Path(sys.executable).with_name("warmline")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("dialer-crash") / "var", PORT_BASE) as settings:
        yield settings


def make_campaign(db: Database, name: str, digits: str) -> None:
    rule = {"delay": f"{RETRY_SECONDS}s", "growth": 1, "max_attempts": 3}
    spec = {
        "name": name,
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["00:00-24:00"]},
        "retry": {o: dict(rule) for o in ("busy", "no_answer", "machine", "failed", "abandoned", "no_input")},
        "max_attempts": 3,
        "daily_cap": 10,
        "rolling_cap": 10,
        "max_channels": 30,
        "calls_per_second": 10,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="test")
    lines = ["name,phone,clinic,date"] + [
        f"客户{i},139{i:07d}{d},社区医院,明天" for i, d in enumerate(digits)
    ]
    import_list(db, name, io.BytesIO(("\n".join(lines) + "\n").encode()), "list.csv", actor="test")
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor="test")


def worker(settings: Settings, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WARMLINE_VAR_DIR": str(settings.var_dir),
        "WARMLINE_DATABASE_URL": settings.db_url,
        "WARMLINE_ASTERISK_NODES": json.dumps([{"ari_url": settings.asterisk_nodes[0].ari_url}]),
        "WARMLINE_TOPIC_PREFIX": f"warmline-test-{uuid.uuid4().hex[:8]}",
        "WARMLINE_DIALER_RING_TIMEOUT": "12",
    }
    out = log.open("ab")
    return subprocess.Popen(
        [str(WARMLINE), "dialer", "run", "--campaign", name], env=env, stdout=out, stderr=out
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def counts(db: Database, name: str) -> dict[str, int]:
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        live = session.scalar(
            select(func.count()).where(
                Attempt.campaign_id == campaign.id,
                Attempt.state.in_((AttemptState.created, AttemptState.dialing, AttemptState.answered)),
            )
        )
        answered = session.scalar(
            select(func.count()).where(
                Attempt.campaign_id == campaign.id, Attempt.state == AttemptState.answered
            )
        )
        open_ = session.scalar(
            select(func.count()).where(
                Contact.campaign_id == campaign.id,
                Contact.state.in_((ContactState.pending, ContactState.in_progress)),
            )
        )
    return {"live": int(live or 0), "answered": int(answered or 0), "open": int(open_ or 0)}


def check_ledger(db: Database, name: str) -> list[Attempt]:
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        contacts = {
            c.id: c for c in session.scalars(select(Contact).where(Contact.campaign_id == campaign.id))
        }
        attempts = list(
            session.scalars(
                select(Attempt)
                .where(Attempt.campaign_id == campaign.id)
                .order_by(Attempt.contact_id, Attempt.attempt_no)
            )
        )
    assert all(c.state in (ContactState.done, ContactState.exhausted) for c in contacts.values()), [
        (c.phone_e164, c.state) for c in contacts.values()
    ]
    assert sum(c.attempts for c in contacts.values()) == len(attempts)
    by_contact: dict[int, list[Attempt]] = {}
    for a in attempts:
        by_contact.setdefault(a.contact_id, []).append(a)
    for cid, mine in by_contact.items():
        assert [a.attempt_no for a in mine] == list(range(1, len(mine) + 1))
        assert contacts[cid].attempts == len(mine)
        for a in mine:
            assert a.state in (AttemptState.ended, AttemptState.reconciled) and a.outcome, a.id
        for before, after in itertools.pairwise(mine):
            assert before.ended_at is not None
            assert after.created_at >= before.ended_at + timedelta(seconds=RETRY_SECONDS), (
                before.id,
                after.id,
            )
    assert set(by_contact) == set(contacts)  # nobody lost: every contact was called
    return attempts


def channels(settings: Settings) -> set[str]:
    import asyncio

    st = lab_status(settings)

    async def ids() -> set[str]:
        async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
            return {c["id"] for c in await ari.channels()}

    return asyncio.run(ids())


def test_sigkill_mid_campaign_then_restart(lab: Settings, db: Database, tmp_path: Path) -> None:
    settings = lab.model_copy(update={"database_url": db.url})
    name = "crash-kill"
    make_campaign(db, name, "9" * 8 + "0" * 6 + "1" * 6)
    log = tmp_path / "dialer.log"
    proc = worker(settings, name, log)
    try:
        wait_for("calls in progress", lambda: counts(db, name)["answered"] >= 8, 60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = counts(db, name)
        assert killed["live"] >= 8
        with db.session() as session:
            live_ids = set(
                session.scalars(
                    select(Attempt.id).where(
                        Attempt.state.in_((AttemptState.created, AttemptState.dialing, AttemptState.answered))
                    )
                )
            )
        assert live_ids & channels(settings), "the killed dialer's calls are still up in Asterisk"
        time.sleep(2)
        proc = worker(settings, name, log)
        wait_for(
            "the campaign to finish", lambda: counts(db, name) == {"live": 0, "answered": 0, "open": 0}, 300
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    attempts = check_ledger(db, name)
    interrupted = [a for a in attempts if a.outcome == "interrupted"]
    assert interrupted, log.read_text()[-3000:]
    # The calls found alive after the restart were followed (or hung up), never left up.
    assert not ({a.id for a in attempts} & channels(settings))


def test_asterisk_restart_mid_campaign(lab: Settings, db: Database, tmp_path: Path) -> None:
    settings = lab.model_copy(update={"database_url": db.url})
    name = "crash-asterisk"
    make_campaign(db, name, "9" * 6 + "0" * 5 + "1" * 5)
    log = tmp_path / "dialer.log"
    proc = worker(settings, name, log)
    try:
        wait_for("calls in progress", lambda: counts(db, name)["answered"] >= 6, 60)
        lab_stop(settings)
        time.sleep(3)
        lab_start(settings)
        restarted = utcnow()
        wait_for(
            "the campaign to finish", lambda: counts(db, name) == {"live": 0, "answered": 0, "open": 0}, 300
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    attempts = check_ledger(db, name)
    # Asterisk hung up the calls it had as it stopped (their outcomes say how far each got); the
    # cut calls were retried after the restart, and the callees who confirm did so then.
    cut = [
        a
        for a in attempts
        if a.created_at < restarted and a.ended_at and a.ended_at >= restarted - timedelta(seconds=5)
    ]
    assert cut, log.read_text()[-3000:]
    assert [a for a in attempts if a.created_at > restarted and a.outcome == "confirmed"], log.read_text()[
        -3000:
    ]
