"""The dialer's CPU per call against the fake Asterisk, without a lab (issue 13, item 3).

    .venv/bin/python -m tests.bench.dialer_cpu_fake [CALLS] [--tick S] [--virtual] [--callee at-once|full]
    .venv/bin/python -m tests.bench.dialer_cpu_fake --quiet SECONDS

A broadcast campaign of CALLS callees (default 200) who answer and hang up at once (`--callee
at-once`, the default: the lab's callee 8) or hear the whole message (`--callee full`: answer at
once, AMD says HUMAN after 2.5 s, both prompts play, 2 s each, and the callee hangs up half a second
into the question's wait for a key, as the lab's callee 1 does: outcome `no_input`), at 10 calls a
second, through a DialerWorker on a fresh SQLite file; prints this process's CPU per attempt (the
worker, the database, and the fake Asterisk's own work, which is small). `--quiet S`: no calls, the
CPU per second of a worker whose campaign has nothing due -- the passes' own cost, which a call
lasting 20 s carries 20 s of. The lab bench
(test_load_bench.py -k cpu) gives the figure against Asterisk's; this one needs no lab lock, so it
is the quick way to see what a change to the dialer's per-call work does. For a profile, run it
under ``py-spy record -r 200 --format raw -o out.txt -- .venv/bin/python -m tests.bench.dialer_cpu_fake``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.db import Database
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.engine import runtime
from dialer.engine.runtime import DialerWorker
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus
from tests.fakes.ari import Callee, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.fakes.prompts import SilentPrompts
from warmline import migrate

CALLEE = Callee(answer_after=0.0, hangup_on="answer")  # the lab's callee 8
PLAY_SECONDS = 2.0  # each prompt, as SilentPrompts makes them
# The lab's callee 1: answers, is HUMAN, hears the greeting and the question, hangs up unanswered.
FULL_MESSAGE = Callee(
    answer_after=0.0, amd="HUMAN", hangup_on="prompt", hangup_prompt=2, hangup_after=PLAY_SECONDS + 0.5
)
CALLEES = {"at-once": CALLEE, "full": FULL_MESSAGE}


class _SilentPromptCache:
    @staticmethod
    def for_settings(settings: Any, *args: Any, **kw: Any) -> SilentPrompts:
        return SilentPrompts(settings.var_dir / "prompts")


def measure(calls: int, tick: float, virtual: bool, callee: Callee = CALLEE, quiet: float = 0.0) -> float:
    """CPU milliseconds of this process per attempt over `calls` calls to `callee`; with `quiet`
    (and no calls): per second of a worker whose running campaign has nothing due, over `quiet`
    seconds after a warm-up of 3."""
    runtime.PromptCache = _SilentPromptCache  # type: ignore[attr-defined,assignment]
    tmp = Path(tempfile.mkdtemp(prefix="dialer-cpu-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(url)
    db = Database(url)
    node = AsteriskNode(name="fake", ari_password="unused")
    settings = Settings(
        var_dir=tmp / "var",
        database_url=url,
        dialer_enabled=True,
        asterisk_nodes=[node],
        dialer_ring_timeout=15,
        dialer_tick=tick,
        _env_file=None,
    )
    spec = {
        "name": "cpu",
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": 1,
        "max_channels": 300,
        "calls_per_second": 10,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="bench")
    if calls:
        lines = ["name,phone,clinic,date"] + [f"x,137{i:07d}8,c,d" for i in range(calls)]
        import_list(db, "cpu", io.BytesIO(("\n".join(lines) + "\n").encode()), "cpu.csv", actor="bench")
    with db.session() as session:
        svc.set_status(session, "cpu", CampaignStatus.running, actor="bench")

    async def main() -> float:
        asterisk = FakeAsterisk(default=lambda _endpoint: callee, play_seconds=PLAY_SECONDS)
        loop = asyncio.get_running_loop()
        t0, start = loop.time(), datetime.now(UTC)
        worker = DialerWorker(
            settings,
            db,
            campaigns={"cpu"},
            now=lambda: start + timedelta(seconds=loop.time() - t0),
            monotonic=loop.time,
            ari_factory=lambda n, _s: asterisk.client(n.app, "bench"),
        )
        if quiet:
            running = asyncio.create_task(worker.run())
            await asyncio.sleep(3.0)
            cpu0, wall0 = time.process_time(), loop.time()
            await asyncio.sleep(quiet)
            cpu1, wall1 = time.process_time(), loop.time()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return (cpu1 - cpu0) / (wall1 - wall0) * 1000
        cpu0 = time.process_time()
        await worker.run(until=lambda: worker.closed_calls >= calls)
        return (time.process_time() - cpu0) / calls * 1000

    try:
        return run_virtual(main()) if virtual else asyncio.run(main())
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("calls", type=int, nargs="?", default=200)
    parser.add_argument("--tick", type=float, default=Settings.model_fields["dialer_tick"].default)
    parser.add_argument("--virtual", action="store_true", help="on the tests' virtual clock")
    parser.add_argument(
        "--callee",
        choices=sorted(CALLEES),
        default="at-once",
        help="hangs up at once, or hears the whole message",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="no calls: the CPU per second of a worker whose campaign has nothing due, over S seconds",
    )
    args = parser.parse_args()
    if args.quiet:
        ms = measure(0, args.tick, args.virtual, quiet=args.quiet)
        print(
            f"[fake bench] a worker with nothing due, {args.quiet:.0f} s: dialer CPU {ms:.2f} ms per second"
        )
        return
    ms = measure(args.calls, args.tick, args.virtual, CALLEES[args.callee])
    what = "trivial calls" if args.callee == "at-once" else "full-message calls"
    print(f"[fake bench] {args.calls} {what} at 10/s: dialer CPU per attempt {ms:.2f} ms")


if __name__ == "__main__":
    main()
