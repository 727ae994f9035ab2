"""Dialer benchmark against the lab Asterisk: pacing, CPU per attempt, concurrent calls.

    .venv/bin/pytest -m bench -s tests/bench/test_dialer_bench.py

1. Pacing and CPU: a campaign of short callees (last digit 8: answers and hangs up at once, after
   going through AMD) at 5, 10 and 20 calls per second, and of callees who listen to the whole
   message (1: AMD, then the IVR flow, ~25 s) at 5 per second. Achieved rate = attempts started over the
   span between the first and last start; the dialer's CPU (this process: worker, ARI, database)
   and Asterisk's CPU (/proc/<pid>/stat utime+stime) over the same calls, per attempt.
2. Concurrency: long callees (9: talks ~60 s, through the IVR flow) with max_channels raised to
   400 at 25 calls per second for at most ~100 s; the peak of calls up at once, and how many
   originates failed. Figures are printed; only pacing is asserted (within 5%).
The lab runs on the ports of its slot (PORTS below, from LAB_SLOTS in tests/lab.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.ari import AriClient, AriError
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.runtime import DialerWorker
from dialer.lists.importer import import_list
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState
from tests.lab import lab_ports, private_lab
from warmline import migrate
from warmline.lab import lab_status

pytestmark = pytest.mark.bench

PORTS = lab_ports("dialer_bench")
TICK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Database]]:
    var = tmp_path_factory.mktemp("dialer-bench") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'bench.db'}"
    with private_lab(var, PORTS, database_url=url, dialer_ring_timeout=15) as settings:
        migrate.upgrade(url)
        db = Database(url)
        yield settings, db
        db.dispose()


def asterisk_cpu(settings: Settings) -> float:
    pid = lab_status(settings).pid
    assert pid is not None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


def campaign(db: Database, name: str, digit: str, n: int, cps: float, max_channels: int) -> None:
    spec = {
        "name": name,
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": 1,
        "max_channels": max_channels,
        "calls_per_second": cps,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="bench")
    lines = ["name,phone,clinic,date"] + [f"x,137{i:07d}{digit},c,d" for i in range(n)]
    import_list(db, name, io.BytesIO(("\n".join(lines) + "\n").encode()), f"{name}.csv", actor="bench")
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor="bench")


def open_contacts(db: Database, name: str) -> int:
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        return int(
            session.scalar(
                select(func.count()).where(
                    Contact.campaign_id == cid,
                    Contact.state.in_((ContactState.pending, ContactState.in_progress)),
                )
            )
            or 0
        )


@pytest.mark.parametrize(("digit", "cps"), [("8", 5), ("8", 10), ("8", 20), ("1", 5)])
def test_pacing_and_cpu_per_attempt(lab: tuple[Settings, Database], digit: str, cps: int) -> None:
    settings, db = lab
    name = f"bench-pace-{digit}-{cps}"
    n = cps * 12
    campaign(db, name, digit, n, cps, max_channels=300)
    worker = DialerWorker(settings, db, campaigns={name})
    ast0, cpu0, wall0 = asterisk_cpu(settings), time.process_time(), time.monotonic()

    def done() -> bool:
        return worker.closed_calls >= n or time.monotonic() - wall0 > 180

    asyncio.run(worker.run(until=done))
    ast1, cpu1, wall1 = asterisk_cpu(settings), time.process_time(), time.monotonic()
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        starts = sorted(session.scalars(select(Attempt.created_at).where(Attempt.campaign_id == cid)))
        outcomes = dict(
            session.execute(
                select(Attempt.outcome, func.count())
                .where(Attempt.campaign_id == cid)
                .group_by(Attempt.outcome)
            ).all()
        )
    attempts = len(starts)
    # The bucket starts full (burst = rate): the first second's calls go at once, then the rate.
    steady = starts[cps:]
    span = (steady[-1] - steady[0]).total_seconds()
    achieved = (len(steady) - 1) / span
    dialer_ms = (cpu1 - cpu0) / attempts * 1000
    asterisk_ms = (ast1 - ast0) / attempts * 1000
    print(
        f"\n[dialer bench] callee {digit}, setting {cps}/s: {attempts} attempts in {wall1 - wall0:.1f} s, achieved "
        f"{achieved:.2f}/s ({(achieved / cps - 1) * 100:+.1f}%); CPU per attempt: dialer {dialer_ms:.1f} ms, "
        f"Asterisk {asterisk_ms:.1f} ms, ratio {dialer_ms / asterisk_ms:.1%}; outcomes {outcomes}"
    )
    assert attempts == n
    assert abs(achieved / cps - 1) <= 0.05


def test_largest_concurrent_call_count(lab: tuple[Settings, Database]) -> None:
    settings, db = lab
    name = "bench-concurrency"
    campaign(db, name, "9", 400, 25, max_channels=400)
    worker = DialerWorker(settings, db, campaigns={name})
    peak = [0]
    wall0 = time.monotonic()

    def until() -> bool:
        with db.session() as session:
            up = session.scalar(select(func.count()).where(Attempt.state == AttemptState.answered)) or 0
        peak[0] = max(peak[0], int(up))
        return time.monotonic() - wall0 > 60 or open_contacts(db, name) == 0

    async def run() -> None:
        await worker.run(until=until)
        st = lab_status(settings)
        async with AriClient(st.ari_url, st.ari_user, st.ari_password, st.app) as ari:
            for ch in await ari.channels():
                with contextlib.suppress(AriError):
                    await ari.hangup(ch["id"])

    asyncio.run(run())
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        attempts = session.scalar(select(func.count()).where(Attempt.campaign_id == cid))
        failed = session.scalar(
            select(func.count()).where(Attempt.campaign_id == cid, Attempt.outcome == "failed")
        )
    print(
        f"\n[dialer bench] concurrency: peak {peak[0]} calls up at once (callees talking, IVR flow "
        f"playing), {attempts} attempts placed in 60 s at 25/s, {failed} originates failed"
    )
