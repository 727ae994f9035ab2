"""Crash safety against the real lab: `warmline dialer run` (a subprocess, as in production)
SIGKILLed mid-campaign and started again. The bookkeeping of every crash -- killed, stopped, killed
while dialling, Asterisk restarted -- is proven on the fake Asterisk in
tests/unit/test_reconcile_fake_ari.py (both databases, virtual time); this keeps what only the real
Asterisk and a real killed process show.

Lab on its own ports (slot "dialer_crash", tests/lab.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.ari import AriClient
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.models import Attempt, AttemptState, Contact, ContactState
from tests.lab import lab_ports, private_lab
from tests.utils.campaigns import make_running_campaign
from tests.utils.processes import stop
from warmline.lab import lab_status

pytestmark = pytest.mark.integration

PORTS = lab_ports("dialer_crash")
RETRY_SECONDS = 20
LIVE = (AttemptState.created, AttemptState.dialing, AttemptState.answered)
WARMLINE = Path(sys.executable).with_name("warmline")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("dialer-crash") / "var", PORTS) as settings:
        yield settings


def worker(settings: Settings, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WARMLINE_VAR_DIR": str(settings.var_dir),
        "WARMLINE_DATABASE_URL": settings.db_url,
        "WARMLINE_ASTERISK_NODES": json.dumps([{"ari_url": settings.asterisk_nodes[0].ari_url}]),
        "WARMLINE_TOPIC_PREFIX": f"warmline-test-{uuid.uuid4().hex[:8]}",
        "WARMLINE_DIALER_RING_TIMEOUT": "12",
        # The killed worker's node lease runs out this soon, so the next worker takes over quickly.
        "WARMLINE_DIALER_LEASE_SECONDS": "6",
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


def channels(settings: Settings) -> set[str]:
    import asyncio

    st = lab_status(settings)

    async def ids() -> set[str]:
        async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
            return {c["id"] for c in await ari.channels()}

    return asyncio.run(ids())


def live_attempts(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Attempt.id).where(Attempt.state.in_(LIVE))))


def test_sigkill_mid_campaign_then_restart(lab: Settings, db: Database, tmp_path: Path) -> None:
    """What only a real Asterisk and a real killed process show (the bookkeeping of every kind of
    crash is proven branch by branch in tests/unit/test_reconcile_fake_ari.py): Asterisk keeps a
    dead app's channels, lists them so Stasis and AMD can be told apart, sends their events to the
    new worker's websocket; the new worker follows or ends every one of them, leaving none up."""
    settings = lab.model_copy(update={"database_url": db.url})
    name = "crash-kill"
    make_running_campaign(db, name, "9" * 8 + "0" * 6 + "1" * 6)
    log = tmp_path / "dialer.log"
    proc = worker(settings, name, log)
    try:
        wait_for("calls in progress", lambda: counts(db, name)["answered"] >= 8, 120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        left = live_attempts(db)
        assert len(left) >= 8
        assert left & channels(settings), "the killed dialer's calls are still up in Asterisk"
        proc = worker(settings, name, log)
        wait_for("the killed worker's calls to be settled", lambda: not (left & live_attempts(db)), 180)
    finally:
        stop(proc)
    with db.session() as session:
        settled = list(session.scalars(select(Attempt).where(Attempt.id.in_(left))))
        contacts = list(session.scalars(select(Contact)))
        attempts = list(session.scalars(select(Attempt)))
    assert all(a.outcome for a in settled), "every attempt the killed worker left has its outcome"
    assert [a for a in settled if a.outcome == "interrupted"], log.read_text()[-3000:]
    assert not (left & channels(settings)), "none of them was left up in Asterisk"
    # The ledger and the contacts agree (a contact counts an attempt when it is closed; the second
    # worker was stopped mid-campaign, its own live calls are the next start's), no number twice.
    closed = [a for a in attempts if a.state in (AttemptState.ended, AttemptState.reconciled)]
    assert sum(c.attempts for c in contacts) == len(closed)
    numbers = [(a.contact_id, a.attempt_no) for a in attempts]
    assert len(numbers) == len(set(numbers))
