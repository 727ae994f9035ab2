"""Soak: a campaign at 80% of the Asterisk-alone ceiling for N minutes, memory and descriptors flat.

    WARMLINE_SOAK_MINUTES=30 flock /work/lab.lock .venv/bin/pytest -q -s -m bench tests/bench/test_soak.py

N is WARMLINE_SOAK_MINUTES (default 30). The ceiling is WARMLINE_SOAK_CEILING if set, else the
peak test_load_bench.py saved last (tests/bench/load.py, CEILING_FILE), else it is measured here
first. The campaign: long callees (9, ~60 s) through the IVR with recording (flow bench_record),
max_channels = 80% of the ceiling. Each minute the dialer's (this process) and Asterisk's RSS and
open descriptors are sampled; printed: every sample and the growth first -> last. The first sample is
taken after one minute, once the calls have ramped up. Nothing is asserted about the figures.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dialer import campaigns as svc
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState
from tests.bench.load import (
    Sampler,
    asterisk_alone_ceiling,
    asterisk_pid,
    campaign,
    hang_up_all,
    load_lab,
    number_prefix,
    open_fds,
    rss_mb,
    saved_ceiling,
)

pytestmark = pytest.mark.bench

CALL_SECONDS = 65  # callee 9 talks ~60 s after ringing 1 s and the IVR's sentence


def growth(first: float, last: float) -> str:
    return f"{(last / first - 1) * 100:+.1f}%" if first else "n/a"


def test_soak_at_80_percent_of_the_ceiling(tmp_path: Path) -> None:
    minutes = float(os.environ.get("WARMLINE_SOAK_MINUTES", "30"))
    with load_lab(tmp_path) as (settings, db):
        ceiling = saved_ceiling()
        if ceiling is None:
            ceiling = asterisk_alone_ceiling(settings).peak
            print(f"\n[soak] Asterisk-alone ceiling measured here: {ceiling} calls")
        channels = max(1, int(ceiling * 0.8))
        cps = max(1.0, channels / CALL_SECONDS * 1.5)  # enough to refill the slots as calls end
        name = "soak"
        n = int(channels * (minutes * 60 / CALL_SECONDS + 2))
        campaign(db, name, "9", n, cps, max_channels=channels, flow="bench_record")
        worker = DialerWorker(settings, db, campaigns={name})
        me, ast = os.getpid(), asterisk_pid(settings)
        samples: list[tuple[float, float, int, float, int, int]] = []
        start = time.monotonic()
        next_sample = [start + 60.0]
        with Sampler(settings, number_prefix(name), period=5.0) as sampler:

            def until() -> bool:
                now = time.monotonic()
                if now >= next_sample[0]:
                    next_sample[0] += 60.0
                    row = (
                        (now - start) / 60,
                        rss_mb(me),
                        open_fds(me),
                        rss_mb(ast),
                        open_fds(ast),
                        sampler.last,
                    )
                    samples.append(row)
                    print(
                        f"[soak] {row[0]:4.1f} min: {row[5]} calls up; dialer RSS {row[1]:.1f} MB, "
                        f"{row[2]} fds; Asterisk RSS {row[3]:.1f} MB, {row[4]} fds",
                        flush=True,
                    )
                return now - start >= minutes * 60 + 1

            print(f"\n[soak] {minutes:g} min at {channels} channels (80% of {ceiling}), {cps:.1f}/s")
            asyncio.run(worker.run(until=until))
        asyncio.run(hang_up_all(settings))
        with db.session() as session:
            cid = svc.require_campaign(session, name).id
            attempts = session.scalar(select(func.count()).where(Attempt.campaign_id == cid)) or 0
            outcomes = dict(
                session.execute(
                    select(Attempt.outcome, func.count())
                    .where(Attempt.campaign_id == cid)
                    .group_by(Attempt.outcome)
                ).all()
            )
            left_open = (
                session.scalar(
                    select(func.count()).where(
                        Attempt.campaign_id == cid,
                        Attempt.state.not_in((AttemptState.ended, AttemptState.reconciled)),
                    )
                )
                or 0
            )
    assert samples, "the soak ran less than a minute"
    first, last = samples[0], samples[-1]
    print(
        f"[soak] {attempts} attempts, outcomes {outcomes}, {left_open} left open by the stop; peak "
        f"{sampler.peak} calls up; growth {first[0]:.0f} -> {last[0]:.0f} min: dialer RSS "
        f"{growth(first[1], last[1])}, fds {growth(first[2], last[2])}; Asterisk RSS "
        f"{growth(first[3], last[3])}, fds {growth(first[4], last[4])} (target <= +10%)"
    )
