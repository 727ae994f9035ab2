"""Load figures as ratios, measured in one run on one lab (issue 13, item 3).

    flock /work/lab.lock .venv/bin/pytest -q -s -m bench -p no:cacheprovider tests/bench/test_load_bench.py

1. Ceiling: long callees (9, talk ~60 s) originated straight through ARI with nothing on our side
   (Asterisk alone), ramped at 20/s until an originate fails or ARI answers in more than 2 s (or
   25 s pass), the peak held 5 s; then the same callees through the dialer, with the IVR saying a
   sentence and recording the callee (flow bench_record), at the same rate for the same time.
   Printed: both peaks and their ratio (target >= 80%). The Asterisk-alone peak is saved for
   test_soak.py (tests/bench/load.py, CEILING_FILE).
2. CPU per attempt: the dialer's (this process) over Asterisk's, for callees who hang up at once
   (8; target <= 50%) and callees who hear the whole message (1; target <= 5%): first the lab's
   Local callees, then the same two behaviours over a SIP trunk to SIPp (`-k "cpu and sipp"`), then
   what such a call costs Asterisk alone, Local pair against trunk (no dialer: straight through ARI).
Figures are printed, nothing about time is asserted; every attempt must be closed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState
from tests.bench.load import (
    PORTS,
    TRUNK_TEMPLATE,
    Sampler,
    Traffic,
    asterisk_alone_ceiling,
    asterisk_alone_cpu,
    asterisk_pid,
    campaign,
    cpu_seconds,
    hang_up_all,
    load_lab,
    number_prefix,
    save_ceiling,
    sipp_far_end,
)

pytestmark = pytest.mark.bench

RATE = 20  # calls per second, both routes
RAMP_S = 25.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Database]]:
    with load_lab(Path(tmp_path_factory.mktemp("load-bench"))) as pair:
        yield pair


def test_dialer_holds_this_share_of_the_asterisk_alone_ceiling(lab: tuple[Settings, Database]) -> None:
    settings, db = lab
    t0 = time.monotonic()
    alone = asterisk_alone_ceiling(settings, cps=RATE, ramp_s=RAMP_S, hold_s=5)
    save_ceiling(alone)
    t1 = time.monotonic()
    print(
        f"\n[load bench] Asterisk alone: peak {alone.peak} calls up, {alone.held} still up after a "
        f"5 s hold; {alone.placed} originated at {RATE}/s, {alone.failed} failed, slowest ARI answer "
        f"{alone.slowest:.2f} s; stopped: {alone.reason} ({t1 - t0:.0f} s)",
        flush=True,
    )

    # Through the dialer: the same callees, the same rate, with IVR and recording. It is given enough
    # calls for the whole ramp; its own back-pressure (dialer/engine/pressure.py) may hold some back.
    name = "load-dialer"
    n = max(alone.placed, RATE * int(RAMP_S))
    campaign(db, name, "9", n, RATE, max_channels=1000, flow="bench_record")
    worker = DialerWorker(settings, db, campaigns={name})
    with Sampler(settings, number_prefix(name)) as sampler:
        start = time.monotonic()

        def until() -> bool:
            return time.monotonic() - start > RAMP_S + 5

        asyncio.run(worker.run(until=until))
        asyncio.run(hang_up_all(settings))
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        placed = session.scalar(select(func.count()).where(Attempt.campaign_id == cid)) or 0
        failed = (
            session.scalar(
                select(func.count()).where(Attempt.campaign_id == cid, Attempt.outcome == "failed")
            )
            or 0
        )
        reasons = Counter(
            str((detail or {}).get("originate_error") or f"hangup cause {cause}")[:80]
            for detail, cause in session.execute(
                select(Attempt.detail, Attempt.hangup_cause).where(
                    Attempt.campaign_id == cid, Attempt.outcome == "failed"
                )
            )
        )
    ratio = sampler.peak / alone.peak if alone.peak else 0.0
    print(
        f"[load bench] through the dialer (IVR + recording): peak {sampler.peak} calls up; {placed} "
        f"attempts at {RATE}/s, {failed} failed, slowest ARI answer {sampler.slowest:.2f} s "
        f"({time.monotonic() - t1:.0f} s)\n"
        f"[load bench] dialer / Asterisk alone = {sampler.peak}/{alone.peak} = {ratio:.0%} (target >= 80%)"
    )
    if reasons:  # why calls failed, so a low figure says what it measured
        print(f"[load bench] failed attempts by reason: {dict(reasons.most_common(5))}")
    assert alone.peak > 0


def _cpu_per_attempt(
    settings: Settings, db: Database, name: str, label: str, digit: str, cps: int, n: int, target: float
) -> None:
    """`n` calls through the dialer at `cps`; prints its CPU per attempt over Asterisk's (the
    Asterisk process's utime + stime over the same calls)."""
    campaign(db, name, digit, n, cps, max_channels=300)
    traffic = Traffic()
    worker = DialerWorker(settings, db, campaigns={name}, ari_factory=traffic.ari_factory)
    pid = asterisk_pid(settings)
    ast0, cpu0, wall0 = cpu_seconds(pid), time.process_time(), time.monotonic()
    asyncio.run(worker.run(until=lambda: worker.closed_calls >= n or time.monotonic() - wall0 > 120))
    ast1, cpu1, wall1 = cpu_seconds(pid), time.process_time(), time.monotonic()
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        attempts = session.scalar(select(func.count()).where(Attempt.campaign_id == cid)) or 0
        still_open = (
            session.scalar(
                select(func.count()).where(
                    Attempt.campaign_id == cid,
                    Attempt.state.not_in((AttemptState.ended, AttemptState.reconciled)),
                )
            )
            or 0
        )
        rows = session.execute(
            select(Attempt.outcome, Attempt.amd_status, Attempt.answered_at, Attempt.ended_at).where(
                Attempt.campaign_id == cid
            )
        ).all()
    outcomes = Counter(f"{outcome} (AMD {amd})" for outcome, amd, _, _ in rows)
    lengths = [(end - ans).total_seconds() for _, _, ans, end in rows if ans and end]
    answered = f"{sum(lengths) / len(lengths):.1f} s answered on average" if lengths else "none answered"
    dialer_ms = (cpu1 - cpu0) / attempts * 1000
    asterisk_ms = (ast1 - ast0) / attempts * 1000
    ratio = dialer_ms / asterisk_ms
    print(
        f"\n[load bench] {label} at {cps}/s: {attempts} attempts in {wall1 - wall0:.1f} s; CPU per "
        f"attempt: dialer {dialer_ms:.1f} ms, Asterisk {asterisk_ms:.1f} ms; dialer/Asterisk = {ratio:.0%} "
        f"(target <= {target:.0%}{'' if ratio <= target else ', MISSED'})\n"
        f"[load bench] {label}: outcomes {dict(outcomes.most_common())}, {answered}; "
        f"{traffic.per_attempt(attempts)}"
    )
    assert attempts == n
    assert still_open == 0


@pytest.mark.parametrize(("digit", "cps", "n", "target"), [("8", 10, 80, 0.50), ("1", 5, 30, 0.05)])
def test_dialer_cpu_per_attempt_over_asterisk(
    lab: tuple[Settings, Database], digit: str, cps: int, n: int, target: float
) -> None:
    settings, db = lab
    _cpu_per_attempt(settings, db, f"load-cpu-{digit}", f"callee {digit}", digit, cps, n, target)


# The same callees over a SIP trunk: SIPp (tests/bench/sipp/) answers the lab's PJSIP endpoint
# lab-sipp, so Asterisk pays what a real outbound call costs it (SIP transactions, SDP, an RTP
# session) instead of a Local channel pair into its own dialplan.
SIPP_CASES = [
    # scenario, label, cps, calls, target, echo RTP
    ("hang_up_at_once", "SIPp trunk, callee hangs up at once", 10, 80, 0.50, False),
    ("listen_then_hang_up", "SIPp trunk, callee hears the whole message", 5, 30, 0.05, True),
]


def _on_trunk(settings: Settings) -> Settings:
    nodes = [node.model_copy(update={"dial_template": TRUNK_TEMPLATE}) for node in settings.asterisk_nodes]
    return settings.model_copy(update={"asterisk_nodes": nodes})


@pytest.mark.parametrize(("scenario", "label", "cps", "n", "target", "echo"), SIPP_CASES)
def test_dialer_cpu_per_attempt_over_asterisk_sipp_trunk(
    lab: tuple[Settings, Database],
    tmp_path: Path,
    scenario: str,
    label: str,
    cps: int,
    n: int,
    target: float,
    echo: bool,
) -> None:
    settings, db = lab
    with sipp_far_end(scenario, PORTS, tmp_path, echo=echo) as far:
        sipp0 = far.cpu_seconds()
        _cpu_per_attempt(_on_trunk(settings), db, f"load-sipp-{scenario}", label, "8", cps, n, target)
        sipp_ms = (far.cpu_seconds() - sipp0) / n * 1000
    print(f"[load bench] {label}: SIPp's own CPU per attempt {sipp_ms:.1f} ms (counted on neither side)")


def test_asterisk_cpu_per_call_alone_local_pair_and_sipp_trunk(
    lab: tuple[Settings, Database], tmp_path: Path
) -> None:
    """What a call that is answered and hung up at once costs Asterisk with nothing on our side
    (originated straight through ARI into a dialplan hang-up): a Local pair into the lab's callee
    8 against a PJSIP call to SIPp hanging up at once. Same count, same rate, one after the other."""
    settings, _db = lab
    n, cps = 80, 10
    local_placed, local_ms = asterisk_alone_cpu(settings, "Local/{number}@lab-pstn", n, cps)
    with sipp_far_end("hang_up_at_once", PORTS, tmp_path):
        trunk_placed, trunk_ms = asterisk_alone_cpu(settings, TRUNK_TEMPLATE, n, cps)
    print(
        f"\n[load bench] Asterisk alone (no dialer), {n} calls at {cps}/s answered and hung up at once: "
        f"Local pair {local_ms:.1f} ms per call ({local_placed} placed), SIPp trunk {trunk_ms:.1f} ms per call "
        f"({trunk_placed} placed); trunk / Local = {trunk_ms / local_ms:.1f}x"
    )
    assert local_placed == n
    assert trunk_placed == n
