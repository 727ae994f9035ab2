"""The work-hour ledger: totals per state, day and week bounds, the spoken sentence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agents.ledger import Transition, day_bounds, spoken_summary, totals, week_bounds
from agents.states import hours_report, record_state
from core.db import Database
from core.messages import AgentState

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Monday


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_totals_per_state() -> None:
    changes = [
        Transition("available", at(0)),
        Transition("on_call", at(10)),
        Transition("wrap_up", at(40)),
        Transition("available", at(45)),
        Transition("break", at(60)),
        Transition("available", at(75)),
        Transition("logged_out", at(90)),
    ]
    t = totals(changes, at(0), at(120))
    assert t.logged_in_s == 90 * 60
    assert t.talking_s == 30 * 60 and t.wrap_up_s == 5 * 60 and t.break_s == 15 * 60
    assert t.available_s == (10 + 15 + 15) * 60


def test_state_in_force_before_the_period_counts_from_its_start() -> None:
    t = totals([Transition("available", at(-60))], at(0), at(30))
    assert t.logged_in_s == 30 * 60


def test_local_day_and_week_bounds() -> None:
    start, end = day_bounds(date(2026, 11, 23), SH)
    assert start.astimezone(UTC) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    monday, sunday_end = week_bounds(date(2026, 11, 26), SH)
    assert monday.date() == date(2026, 11, 23) and (sunday_end - monday).days == 7


def test_spoken_summary() -> None:
    t = totals([Transition("available", at(0))], at(0), at(220))
    assert spoken_summary(t, 240) == "today 3 h 40 min; 20 min to your 4-hour day"
    done = totals([Transition("available", at(0))], at(0), at(250))
    assert spoken_summary(done, 240) == "today 4 h 10 min; your 4-hour day is done"


def test_repeated_retained_state_is_recorded_once(db: Database) -> None:
    msg = AgentState(agent="mei", state="available", since=at(0))
    with db.session() as s:
        assert record_state(s, msg) is True
        assert record_state(s, msg) is False  # the broker re-delivers retained states on reconnect
        record_state(s, AgentState(agent="mei", state="on_call", since=at(30)))
    with db.session() as s:
        report = hours_report(s, "mei", at(60), SH)
    assert report.state == "on_call"
    assert report.today.logged_in_s == 3600 and report.today.talking_s == 1800
    assert report.spoken == "today 1 h; 3 h to your 4-hour day"


def test_an_agent_with_no_states_has_no_hours() -> None:
    assert totals([], at(0), at(60)).logged_in_s == 0
