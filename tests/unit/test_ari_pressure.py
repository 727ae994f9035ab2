"""Back-pressure from ARI (dialer/engine/pressure.py, docs/faults.md): a slow ARI makes the dialer
start fewer calls, and it recovers once ARI is fast again. The window's rules on a clock the test
moves; then the whole worker against the fake Asterisk answering originates in 3 s, on SQLite and
PostgreSQL, against the same run with the back-pressure turned off."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.db import Database
from core.settings import Settings
from dialer.engine.pressure import Pressure
from tests.fakes.ari import FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_reconcile_fake_ari import (  # noqa: F401 - fixtures used by name
    FINISH_WITHIN,
    NODE,
    campaign_over,
    check_ledger,
    lab_callee,
    lab_settings,
    make_campaign,
    silent_prompts,
    worker,
)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_window_halves_when_slow_drops_on_timeout_and_grows_back() -> None:
    clock = Clock()
    p = Pressure(slow=2.0, timeout=10.0, max_window=20, clock=clock)
    assert p.allowance(5) == 5 and p.figures()["ari_slow"] == 0
    for _ in range(6):
        p.sent(originate=True)
    p.answered(3.0, originate=True)  # slow: 5 still waiting -> (5 + 5 + 1) / 2
    assert p.window == 5.5 and p.cuts == 1
    p.sent(originate=True)
    p.answered(3.0, originate=True)  # within the same slow period: no second cut
    assert p.cuts == 1
    clock.t = 2.5
    p.sent(originate=True)
    p.answered(3.0, originate=True)
    assert p.cuts == 2 and p.window < 5.5
    assert p.allowance(10) == max(0, int(p.window) - p.originating)
    assert p.held_back > 0 and p.figures()["ari_slow"] == 1
    p.sent(originate=True)
    p.answered(10.0, originate=True, timed_out=True)
    assert p.window == 1.0
    p.sent(originate=False)
    p.answered(0.05, originate=False)
    assert p.window == 1.0, "a fast answer to another request is not a fast originate"
    for _ in range(40):
        p.sent(originate=True)
        p.answered(0.05, originate=True)
    assert p.window == 20 and p.figures()["ari_slow"] == 0, "fast again: back to the node's channels"


@dataclass
class Seen:
    originates_slow: int = 0  # originates sent while ARI was slow, after its first seconds
    peak_waiting: int = 0  # most originates waiting for ARI at once in that time
    figures: dict[str, int] = field(default_factory=dict)
    cuts: int = 0
    window_when_slow: int = 0


SLOW_FROM, SLOW_UNTIL = 6.0, 30.0  # loop seconds after the start: ARI answers originates in 3 s


def run(settings: Settings, db: Database, *, back_pressure: bool) -> Seen:
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        asterisk = FakeAsterisk(default=lab_callee)
        asterisk.delay("originate", 3.0)
        only = worker(settings, db, asterisk, "worker")
        seen = Seen()

        async def watch() -> None:
            await asyncio.sleep(SLOW_FROM)
            link = only.nodes[NODE.name]
            if not back_pressure:
                link.pressure.allowance = lambda wanted: wanted  # type: ignore[method-assign]
            before = len(asterisk.calls("originate"))
            started = loop.time()
            while loop.time() - started < SLOW_UNTIL - SLOW_FROM:
                seen.peak_waiting = max(seen.peak_waiting, link.pressure.originating)
                await asyncio.sleep(0.1)
            seen.originates_slow = len(asterisk.calls("originate")) - before
            seen.window_when_slow = int(link.pressure.window)
            asterisk._delays.clear()  # ARI is fast again

        watching = asyncio.create_task(watch())
        async with asyncio.timeout(FINISH_WITHIN):
            await only.run(until=lambda: watching.done() and only.idle() and campaign_over(db))
        seen.figures = only.ari_figures()
        seen.cuts = only.nodes[NODE.name].pressure.cuts
        return seen

    return run_virtual(main())


def test_a_slow_ari_gets_fewer_calls_then_recovers(
    lab_settings: Settings,  # noqa: F811
    db: Database,
) -> None:
    make_campaign(db, "0" * 120)
    slowed = run(lab_settings, db, back_pressure=True)
    check_ledger(db)  # nobody lost, every attempt closed, no retry early
    print(f"back-pressure: {slowed}")
    assert slowed.cuts >= 1 and slowed.figures["ari_held_back"] > 0
    assert slowed.window_when_slow <= 4, "a handful of originates at once while ARI is slow"
    assert slowed.originates_slow <= 24 and slowed.peak_waiting <= 12  # without: >= 30 and >= 18
    assert slowed.figures["ari_window"] > 2 * slowed.window_when_slow and slowed.figures["ari_slow"] == 0, (
        "recovered once ARI was fast again"
    )


def test_without_back_pressure_the_originates_pile_up(
    lab_settings: Settings,  # noqa: F811
    db: Database,
) -> None:
    """The same run with the window ignored: what back-pressure saves ARI from (about twice the
    originates into the slow ARI, more than twice as many waiting at once)."""
    make_campaign(db, "0" * 120)
    plain = run(lab_settings, db, back_pressure=False)
    check_ledger(db)
    print(f"without: {plain}")
    assert plain.originates_slow >= 30 and plain.peak_waiting >= 18
