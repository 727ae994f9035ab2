"""Compliments pushed to the agent as they happen (workforce.compliments, both databases): each new
survey score at or above the threshold becomes one ``compliment`` event for its agent; lower scores,
scores with no agent and scores stored before the follower began are not; the service holds the
event for the agent's phone (agents.screen_pops). The phone's side (polite, never over a call) is in
tests/unit/test_cooldown_notices.py; through warmline up in tests/integration/test_cooldown_service.py."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.screen_pops import ScreenPopBox
from core.db import Database
from ivr.survey import save_score
from workforce.compliments import new_compliments, start_watch

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_each_new_high_score_is_one_compliment_for_its_agent(db: Database) -> None:
    with db.session() as s:
        save_score(s, call_ref="old", score=5, agent="mei", line="community-hotline", now=NOW)
    with db.session() as s:
        watch = start_watch(s)
        assert new_compliments(s, watch, 5) == [], "scores before the follower began are not news"
        save_score(s, call_ref="a1", score=5, agent="mei", line="community-hotline", now=NOW)
        save_score(s, call_ref="a2", score=4, agent="mei", campaign="flu", now=NOW)
        save_score(s, call_ref="a3", score=5, agent=None, line="community-hotline", now=NOW)
        save_score(s, call_ref="a4", score=5, agent="lin", campaign="flu", now=NOW)
    with db.session() as s:
        events = new_compliments(s, watch, 5)
        assert [(e.call_id, e.kind, e.detail["agent"], e.detail["score"]) for e in events] == [
            ("a1", "compliment", "mei", 5),
            ("a4", "compliment", "lin", 5),
        ]
        assert events[1].campaign == "flu" and events[0].detail["line"] == "community-hotline"
        assert new_compliments(s, watch, 5) == [], "once"
        save_score(s, call_ref="a5", score=4, agent="mei", campaign="flu", now=NOW)
    with db.session() as s:
        [four] = new_compliments(s, watch, 4)  # WARMLINE_SURVEY_COMPLIMENT_SCORE=4
        assert (four.call_id, four.detail["score"]) == ("a5", 4)
    box = ScreenPopBox()
    held = box.put(events[0])
    assert held is not None and held.kind == "compliment" and held.fields["score"] == "5"
    assert "campaign" not in held.fields, "nothing empty is sent"
