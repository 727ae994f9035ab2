"""Every branch of a call an agent places, agent leg first, in milliseconds: `agents.placed_calls`
against the fake Asterisk with the real EventDispatcher, state ledger (SQLite and PostgreSQL),
stereo capture and registry, on a virtual clock.

The agent's phone rings first; only once they answer is the far end dialled; then both are
bridged and recorded. What only the real Asterisk and a real softphone show (audio both ways) is in
tests/integration/test_preview_dial_lab.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from agents.handover import CallOrigin, HandoverDeps, SkillQueues
from agents.placed_calls import PlacedCall, PlacedCallRequest, PlacedCallResult
from agents.states import current_state
from core.db import Database
from core.settings import Settings
from recordings.models import CallRecording
from tests.fakes.ari import BUSY, NO_ANSWER, Callee, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.utils.agents import available, endpoint_of, fake_node, make_agents

FAR_END = "Local/8613800138009@lab-pstn"
CALL_ID = "attempt-1"
ANSWERS = Callee(answer_after=0.5)
TALKS = Callee(answer_after=2.0, hangup_on="answer", hangup_after=20.0)  # 20 s of conversation
ORIGIN = CallOrigin(
    campaign="welfare-w48", campaign_id=None, attempt_id=CALL_ID, contact_name="王奶奶",
    phone_masked="138****8009", fields={"社区": "朝阳"},
)  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=db.url, _env_file=None)


@dataclass
class Seen:
    result: PlacedCallResult
    asterisk: FakeAsterisk
    progress: list[str]
    agent_endpoint: str


def place(
    settings: Settings,
    db: Database,
    *,
    agent: Callee,
    far_end: Callee,
    prepare: Callable[[FakeAsterisk], None] | None = None,
) -> Seen:
    make_agents(db, {"mei": ["welfare"]})
    available(db, "mei")
    endpoint = endpoint_of(db, "mei")
    progress: list[str] = []

    async def noted(what: str) -> None:
        progress.append(what)

    async def main() -> Seen:
        async with fake_node(settings, db, {"mei": agent}) as node:
            node.asterisk.callee(FAR_END, far_end)
            if prepare is not None:
                prepare(node.asterisk)
            deps = HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues())
            request = PlacedCallRequest(
                call_id=CALL_ID, agent="mei", agent_endpoint=endpoint.removeprefix("PJSIP/"),
                destination=FAR_END, origin=ORIGIN, caller_id="12345", agent_ring_timeout=15,
                ring_timeout=25, on_progress=noted,
            )  # fmt: skip
            result = await PlacedCall(deps, request).run()
            return Seen(result, node.asterisk, progress, endpoint)

    return run_virtual(main())


def state_of(db: Database, agent: str = "mei") -> tuple[str, str | None]:
    with db.session() as s:
        st = current_state(s, agent)
        assert st is not None
        return st.state, st.reason


def originated(seen: Seen) -> list[str]:
    return [str(r.params["endpoint"]) for r in seen.asterisk.calls("originate")]


# ---------------------------------------------------------------- connected


def test_agent_rings_first_then_the_far_end_and_both_are_bridged_and_recorded(
    settings: Settings, db: Database
) -> None:
    seen = place(settings, db, agent=ANSWERS, far_end=TALKS)
    result = seen.result
    assert (result.outcome, result.agent_answered, result.answered, result.ended_by) == (
        "connected", True, True, "customer",
    )  # fmt: skip
    assert originated(seen) == [seen.agent_endpoint, FAR_END], "the agent's phone first, then the far end"
    assert seen.progress == ["agent_answered", "originated", "answered"]
    assert 19 <= result.talk_seconds <= 21

    agent_leg, far = seen.asterisk.calls("originate")
    assert agent_leg.params["context"] == "warmline-record", "recorded like every agent call"
    headers = {k: unquote(str(v)) for k, v in (agent_leg.body or {})["variables"].items()}
    assert headers["PJSIP_HEADER(add,X-Warmline-Attempt)"] == CALL_ID, "the wrap-up is for this call"
    assert headers["PJSIP_HEADER(add,X-Warmline-Placed)"] == "1"
    assert headers["PJSIP_HEADER(add,X-Warmline-Phone)"] == "138****8009"
    assert headers["PJSIP_HEADER(add,X-Warmline-Field-Name)"] == "王奶奶"
    assert far.target is None and far.params["channelId"] == CALL_ID, "the attempt's id is the channel's"
    assert (far.params["appArgs"], far.params["callerId"], far.params["timeout"]) == ("placed", "12345", 25)
    assert "tone:ring" in [str(r.params.get("media")) for r in seen.asterisk.calls("play")], "ringback"
    [bridge] = seen.asterisk.calls("add_channel")
    assert set(bridge.params["channel"]) == {CALL_ID, agent_leg.params["channelId"]}
    assert seen.asterisk.channels == {}, "both legs are gone"

    assert result.recording_id is not None
    with db.session() as s:
        rec = s.scalar(select(CallRecording))
        assert rec is not None
        assert (rec.id, rec.agent, rec.attempt_id, rec.campaign) == (
            result.recording_id,
            "mei",
            CALL_ID,
            "welfare-w48",
        )
    assert state_of(db) == ("wrap_up", "call_ended")


def test_the_agent_hanging_up_ends_the_far_end(settings: Settings, db: Database) -> None:
    agent = Callee(answer_after=0.5, hangup_on="answer", hangup_after=10.0)
    seen = place(settings, db, agent=agent, far_end=ANSWERS)
    assert (seen.result.outcome, seen.result.ended_by) == ("connected", "agent")
    assert CALL_ID in seen.asterisk.destroyed and seen.asterisk.channels == {}


# ---------------------------------------------------------------- the agent


def test_an_agent_who_does_not_answer_is_freed_and_nobody_is_dialled(
    settings: Settings, db: Database
) -> None:
    seen = place(settings, db, agent=NO_ANSWER, far_end=ANSWERS)
    assert (seen.result.outcome, seen.result.agent_answered, seen.result.far_end_dialled) == (
        "agent_no_answer", False, False,
    )  # fmt: skip
    assert originated(seen) == [seen.agent_endpoint], "the far end is never dialled"
    assert seen.progress == []
    assert state_of(db) == ("available", "placed_call_unanswered")
    with db.session() as s:
        assert s.scalar(select(CallRecording)) is None
    assert not list((settings.recordings_dir).rglob("*.wav")), "nothing was recorded"


def test_an_agent_who_declines_is_freed_at_once(settings: Settings, db: Database) -> None:
    seen = place(settings, db, agent=BUSY, far_end=ANSWERS)
    assert seen.result.outcome == "agent_no_answer" and originated(seen) == [seen.agent_endpoint]


def test_the_agent_hanging_up_while_the_far_end_rings_ends_it(settings: Settings, db: Database) -> None:
    agent = Callee(answer_after=0.5, hangup_on="answer", hangup_after=4.0)
    seen = place(settings, db, agent=agent, far_end=NO_ANSWER)
    result = seen.result
    assert (result.outcome, result.far_end_dialled, result.answered) == ("agent_hangup", True, False)
    assert result.hangup_cause == 16, "hung up by us: normal clearing"
    assert seen.asterisk.channels == {}
    assert seen.progress == ["agent_answered", "originated"]
    assert state_of(db)[0] == "wrap_up"


# ---------------------------------------------------------------- the far end


@pytest.mark.parametrize(("far_end", "cause"), [(BUSY, 17), (NO_ANSWER, 19), (Callee(refuse=34), 34)])
def test_a_far_end_not_reached_ends_the_agents_leg_with_its_cause(
    settings: Settings, db: Database, far_end: Callee, cause: int
) -> None:
    seen = place(settings, db, agent=ANSWERS, far_end=far_end)
    result = seen.result
    assert (result.outcome, result.far_end_dialled, result.answered, result.hangup_cause) == (
        "not_answered", True, False, cause,
    )  # fmt: skip
    assert seen.asterisk.channels == {}, "the agent's leg is ended too"
    assert not seen.asterisk.calls("add_channel")
    assert state_of(db) == ("wrap_up", "call_ended")
    assert not list(settings.recordings_dir.rglob("*.wav")), "nothing said, nothing kept"


# ---------------------------------------------------------------- ARI errors


def test_asterisk_unreachable_places_nothing(settings: Settings, db: Database) -> None:
    seen = place(settings, db, agent=ANSWERS, far_end=ANSWERS, prepare=lambda a: a.unreachable("originate"))
    assert (seen.result.outcome, seen.result.far_end_dialled) == ("not_placed", False)
    assert state_of(db) == ("available", "placed_call_failed")


def test_an_ari_error_dialling_the_far_end_frees_the_agent(settings: Settings, db: Database) -> None:
    def far_end_fails(asterisk: FakeAsterisk) -> None:
        asterisk.fail("originate", 500, "Allocation failed", when=lambda r: r.params["endpoint"] == FAR_END)

    seen = place(settings, db, agent=ANSWERS, far_end=ANSWERS, prepare=far_end_fails)
    result = seen.result
    assert (result.outcome, result.agent_answered, result.answered) == ("error", True, False)
    assert result.error is not None and "Allocation failed" in result.error
    assert seen.asterisk.channels == {}, "the agent's leg is not left up"
    assert state_of(db)[0] == "wrap_up"


def test_the_far_end_unreachable_after_the_agent_answered_counts_nothing(
    settings: Settings, db: Database
) -> None:
    def far_end_unreachable(asterisk: FakeAsterisk) -> None:
        asterisk.fail(
            "originate", 0, "ConnectError: [Errno 111] Connection refused",
            when=lambda r: r.params["endpoint"] == FAR_END,
        )  # fmt: skip

    seen = place(settings, db, agent=ANSWERS, far_end=ANSWERS, prepare=far_end_unreachable)
    assert (seen.result.outcome, seen.result.far_end_dialled) == ("not_placed", False)
    assert seen.asterisk.channels == {}


def test_a_bridge_that_fails_still_hangs_up_both_and_frees_the_agent(
    settings: Settings, db: Database
) -> None:
    seen = place(settings, db, agent=ANSWERS, far_end=TALKS, prepare=lambda a: a.fail("add_channel", 500))
    result = seen.result
    assert (result.outcome, result.answered) == ("error", True), "answered, then the bridge failed"
    assert seen.asterisk.channels == {}
    assert state_of(db)[0] == "wrap_up"


def test_the_far_end_hanging_up_while_the_agents_leg_is_set_up(settings: Settings, db: Database) -> None:
    """The far end answers and at once hangs up: a conversation of no length, nothing left up."""
    far = Callee(answer_after=0.5, hangup_on="answer", hangup_after=0.0)
    seen = place(settings, db, agent=ANSWERS, far_end=far)
    assert seen.result.answered and seen.asterisk.channels == {}
