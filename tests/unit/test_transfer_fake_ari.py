"""Every path of a transfer, in milliseconds: a caller handed over to agent mei (the hand-over or
mei's own placed call), who asks over the real API service for a transfer -- attended and completed,
attended and cancelled, blind, to a queue, to an outside number, to a colleague who is busy, declines
or does not answer, the caller hanging up while mei consults -- against the fake Asterisk with the
real EventDispatcher, step inbox, routing, state ledger and recordings (SQLite and PostgreSQL) on a
virtual clock.

What only the real Asterisk and real softphones show (the callee and the colleague hear each other)
is in tests/integration/test_transfer_lab.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from agents.handover import (
    CallOrigin,
    Handover,
    HandoverDeps,
    HandoverRequest,
    HandoverResult,
    QueuePolicy,
    SkillQueues,
)
from agents.placed_calls import PlacedCall, PlacedCallRequest
from agents.states import current_state
from agents.transfer import service
from agents.transfer.models import Transfer
from agents.transfer.service import TransferAsk, TransferRefused
from core.db import Database, utcnow
from core.phones import mask
from core.settings import Settings
from recordings.models import CallRecording
from tests.fakes.ari import BUSY, NO_ANSWER, Callee, FakeAsterisk, FakeChannel
from tests.fakes.clock import run_virtual
from tests.utils.agents import available, endpoint_of, fake_node, make_agents

CUSTOMER = "Local/8613800138000@lab-pstn"
OUTSIDE = "Local/861065550000@lab-pstn"
ANSWERS = Callee(answer_after=1.0)
DECLINES = Callee(refuse=21)
SKILLS = {"mei": ["vaccination"], "lin": ["welfare"], "bo": ["welfare"]}
ORIGIN = CallOrigin(
    campaign="flu-2026", attempt_id="att-9", contact_name="王奶奶", phone_masked="138****8000",
    fields={"社区": "朝阳"},
)  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=db.url, agent_ring_timeout=10, _env_file=None)


@dataclass
class Desk:
    """The test's hands: the fake Asterisk, and the agents' API service on the database."""

    asterisk: FakeAsterisk
    db: Database
    took: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def ask(self, kind: str, target: str, mode: str = "attended", agent: str = "mei") -> str:
        def work() -> str:
            with self.db.session() as s:
                return service.request_transfer(
                    s, TransferAsk(agent, "att-9", kind, target, mode), utcnow()
                ).id

        try:
            return await asyncio.to_thread(work)
        except TransferRefused as exc:
            self.errors.append(exc.code)
            return ""

    async def step(self, xfer: str, step: str, agent: str = "mei") -> None:
        def work() -> None:
            with self.db.session() as s:
                service.request_step(s, agent, xfer, step, utcnow())

        await asyncio.to_thread(work)

    def leg_of(self, agent: str) -> str:
        endpoint = endpoint_of(self.db, agent)
        return next(c.id for c in self.asterisk.channels.values() if c.endpoint == endpoint)

    def hang_up(self, channel_id: str) -> None:
        self.asterisk.hangup_by_callee(channel_id)


Script = Callable[[Desk], Coroutine[Any, Any, Any]]


def handed_over(
    settings: Settings, db: Database, callees: dict[str, Callee], script: Script, *, caller_leaves: float = 40
) -> tuple[HandoverResult, Desk]:
    """A caller handed over to mei (skill vaccination) while ``script`` acts; the caller hangs up
    after ``caller_leaves`` seconds."""

    async def main() -> tuple[HandoverResult, Desk]:
        async with fake_node(settings, db, callees) as node:
            distinct_recordings(settings, node.asterisk)
            desk = Desk(node.asterisk, db)

            async def took(agent: str) -> None:
                desk.took.append(agent)

            cid = f"cust-{uuid.uuid4()}"
            node.asterisk.place(cid, CUSTOMER, stage="stasis", callee=Callee())
            asyncio.get_running_loop().call_later(caller_leaves, lambda: desk.hang_up(cid))
            handover = Handover(HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues()))
            request = HandoverRequest(
                cid, skill="vaccination", origin=ORIGIN, policy=QueuePolicy(timeout=60, ring_timeout=10),
                on_agent=took, number_gate=gate,
            )  # fmt: skip
            acting = asyncio.create_task(script(desk))
            result = await handover.connect(request)
            await acting  # the script's own checks count too
            assert not node.asterisk.bridges, "whatever happened, no bridge is left behind"
            return result, desk

    return run_virtual(main())


def distinct_recordings(settings: Settings, asterisk: FakeAsterisk) -> None:
    """Each agent's leg records its own tone (the registry keeps one row per distinct audio)."""
    record = asterisk.dialplan["warmline-record"]
    legs: list[str] = []

    def run(channel: FakeChannel) -> None:
        legs.append(channel.id)
        base = settings.recordings_dir.resolve() / channel.variables["WARMLINE_REC_FILE"]
        record(channel)
        t = np.arange(8000) / 8000
        tone = (0.3 * np.sin(2 * np.pi * (500 + 100 * len(legs)) * t) * 32767).astype(np.int16)
        sf.write(f"{base}-agent.wav", tone, 8000, subtype="PCM_16")

    asterisk.dialplan["warmline-record"] = run


async def gate(call_ref: str, wanted: str) -> str:
    """The dialer's number gate, as a test double: one number allowed, one on do-not-call."""
    if wanted == "社区卫生服务中心":
        return OUTSIDE
    if wanted == "+8613900000000":
        raise TransferRefused(409, "dnc", "on a do-not-call list")
    raise TransferRefused(409, "not_allowed", "not listed")


def the_transfer(db: Database) -> Transfer:
    with db.session() as s:
        row: Transfer | None = s.scalar(select(Transfer))
        assert row is not None
        s.expunge(row)
        return row


def state(db: Database, agent: str) -> tuple[str, str | None]:
    with db.session() as s:
        st = current_state(s, agent)
        assert st is not None
        return st.state, st.reason


def agents_ready(db: Database, *names: str) -> None:
    make_agents(db, {n: SKILLS[n] for n in ("mei", "lin", "bo")})
    available(db, *names)


# ---------------------------------------------------------------- attended to a colleague


def test_attended_transfer_consults_lin_then_joins_her_with_the_caller(
    settings: Settings, db: Database
) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)  # mei talks to the caller
        xfer = await desk.ask("agent", "lin")
        await asyncio.sleep(6)  # lin answers after 1 s; mei and lin talk
        assert the_transfer(db).state == "consulting"
        mei, lin = (desk.asterisk.channels[desk.leg_of(a)] for a in ("mei", "lin"))
        assert mei.bridge is not None and mei.bridge == lin.bridge, "mei and lin talk in a consult bridge"
        await desk.step(xfer, "complete")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script)
    row = the_transfer(db)
    assert (row.state, row.result, row.from_agent, row.to_agent, row.kind, row.mode) == (
        "completed", "answered", "mei", "lin", "agent", "attended",
    )  # fmt: skip
    assert row.answered_at is not None and row.ended_at is not None and row.ended_at >= row.answered_at
    assert (result.outcome, result.agent, result.ended_by) == ("connected", "lin", "customer")
    assert desk.took == ["mei", "lin"], "the call (and its wrap-up) is lin's once she has the caller"
    assert state(db, "mei") == ("available", "transferred")
    assert state(db, "lin") == ("wrap_up", "call_ended")

    ring = desk.asterisk.calls("originate")[1]
    assert ring.params["context"] == "warmline-record", "lin's leg is recorded too"
    headers = {k: unquote(str(v)) for k, v in (ring.body or {})["variables"].items()}
    assert headers["PJSIP_HEADER(add,X-Warmline-Attempt)"] == "att-9", "the screen pop goes with the call"
    assert headers["PJSIP_HEADER(add,X-Warmline-Field-Name)"] == "王奶奶"
    assert headers["PJSIP_HEADER(add,X-Warmline-Transfer-From)"] == "mei"
    assert headers["PJSIP_HEADER(add,X-Warmline-Transfer-Id)"] == row.id, "lin's phone may read it"
    assert row.rung_agent == "lin"
    assert headers["PJSIP_HEADER(add,X-Warmline-Ticket)"], "lin may fetch the call's script and form"
    assert "13800138000" not in str(ring.body)
    consult = [r for r in desk.asterisk.calls("add_channel") if len(r.params["channel"]) == 2]
    assert len(consult) == 3, "caller+mei, mei+lin (consult), caller+lin"
    assert set(consult[2].params["channel"]) == {consult[0].params["channel"][0], ring.params["channelId"]}
    assert not desk.asterisk.channels and not desk.asterisk.bridges, "every leg and bridge is gone"
    with db.session() as s:
        recs = {r.agent: r.attempt_id for r in s.scalars(select(CallRecording))}
    assert recs == {"mei": "att-9", "lin": "att-9"}, "each agent's part is recorded on the attempt"


def test_mei_goes_back_to_the_caller_when_she_cancels(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        xfer = await desk.ask("agent", "lin")
        await asyncio.sleep(6)
        await desk.step(xfer, "cancel")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script)
    row = the_transfer(db)
    assert (row.state, row.result, row.to_agent, row.rung_agent) == ("cancelled", "cancelled", None, "lin")
    assert (result.agent, result.ended_by) == ("mei", "customer"), "mei kept the caller to the end"
    assert desk.took == ["mei"]
    assert state(db, "mei") == ("wrap_up", "call_ended")
    assert state(db, "lin") == ("available", "consult_ended")
    last = desk.asterisk.calls("add_channel")[-1]
    assert len(last.params["channel"]) == 2 and desk.asterisk.calls("stop_moh"), (
        "caller and mei together again"
    )


@pytest.mark.parametrize(
    ("lin", "result", "lin_after"),
    [
        (BUSY, "busy", ("available", "consult_ended")),
        (DECLINES, "refused", ("available", "consult_ended")),
        (NO_ANSWER, "no_answer", ("break", "no_answer")),
    ],
)
def test_a_colleague_who_cannot_take_it_leaves_mei_with_the_caller(
    settings: Settings, db: Database, lin: Callee, result: str, lin_after: tuple[str, str]
) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")

    outcome, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": lin}, script)
    row = the_transfer(db)
    assert (row.state, row.result) == ("failed", result)
    assert outcome.agent == "mei" and desk.took == ["mei"]
    assert state(db, "mei") == ("wrap_up", "call_ended")
    assert state(db, "lin") == lin_after
    with db.session() as s:
        assert [r.agent for r in s.scalars(select(CallRecording))] == ["mei"], (
            "lin's unanswered leg kept nothing"
        )


def test_a_colleague_not_available_is_refused_at_once(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei")  # lin never became available

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")
        await desk.ask("agent", "mei")
        await desk.ask("agent", "nobody")

    _result, desk = handed_over(settings, db, {"mei": ANSWERS}, script, caller_leaves=10)
    assert desk.errors == ["target_busy", "self", "unknown_agent"]
    assert len(desk.asterisk.calls("originate")) == 1, "nobody else was rung"


def test_the_caller_hanging_up_during_the_consult_ends_it_all(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script, caller_leaves=9)
    row = the_transfer(db)
    assert (row.state, row.result) == ("failed", "caller_hangup")
    assert (result.agent, result.ended_by) == ("mei", "customer")
    assert state(db, "mei") == ("wrap_up", "call_ended"), "the wrap-up is mei's"
    assert state(db, "lin") == ("available", "consult_ended")
    assert not desk.asterisk.channels and not desk.asterisk.bridges, "no leg, no bridge left behind"


def test_mei_hanging_up_while_consulting_hands_the_caller_over(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")
        await asyncio.sleep(6)
        desk.hang_up(desk.leg_of("mei"))

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script)
    assert (the_transfer(db).state, result.agent, desk.took) == ("completed", "lin", ["mei", "lin"])


# ---------------------------------------------------------------- blind, queue, number


def test_blind_transfer_mei_leaves_at_once_and_lin_takes_the_caller(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin", "blind")
        await asyncio.sleep(0.7)
        assert state(db, "mei") == ("available", "transferred"), "mei is free while lin's phone rings"

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script)
    row = the_transfer(db)
    assert (row.state, row.result, row.to_agent, row.mode) == ("completed", "answered", "lin", "blind")
    assert (result.agent, desk.took) == ("lin", ["mei", "lin"])
    assert state(db, "lin") == ("wrap_up", "call_ended")


def test_blind_transfer_nobody_answers_sends_the_caller_to_the_queue(
    settings: Settings, db: Database
) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin", "blind")
        await asyncio.sleep(3)
        available(db, "mei")  # mei, free again, is the call's queue's only agent

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": NO_ANSWER}, script, caller_leaves=60)
    assert (the_transfer(db).state, the_transfer(db).result) == ("failed", "no_answer")
    assert (result.agent, desk.took) == ("mei", ["mei", "mei"]), "the caller was helped after all"


def test_blind_transfer_to_a_queue_the_caller_waits_there(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("queue", "welfare", "blind")
        await asyncio.sleep(10)  # nobody with skill welfare is free: the caller waits in the queue
        assert the_transfer(db).state == "ringing"
        available(db, "bo")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "bo": ANSWERS}, script, caller_leaves=50)
    row = the_transfer(db)
    assert (row.state, row.to_agent, row.kind) == ("completed", "bo", "queue")
    assert (result.agent, desk.took) == ("bo", ["mei", "bo"])
    assert state(db, "mei") == ("available", "transferred")
    ring = desk.asterisk.calls("originate")[-1]
    headers = {k: unquote(str(v)) for k, v in (ring.body or {})["variables"].items()}
    assert headers["PJSIP_HEADER(add,X-Warmline-Field-Name)"] == "王奶奶", "the screen pop goes along"
    assert headers["PJSIP_HEADER(add,X-Warmline-Skill)"] == "welfare"


def test_attended_transfer_to_a_queue_consults_a_free_agent(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "bo")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        xfer = await desk.ask("queue", "welfare")
        await asyncio.sleep(6)
        await desk.step(xfer, "complete")

    result, _desk = handed_over(settings, db, {"mei": ANSWERS, "bo": ANSWERS}, script)
    assert (the_transfer(db).to_agent, result.agent) == ("bo", "bo")


def test_attended_transfer_to_an_outside_number_mei_keeps_the_wrap_up(
    settings: Settings, db: Database
) -> None:
    agents_ready(db, "mei")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        xfer = await desk.ask("number", "社区卫生服务中心")
        await asyncio.sleep(4)
        await desk.step(xfer, "complete")

    result, desk = handed_over(settings, db, {"mei": ANSWERS}, script)
    row = the_transfer(db)
    assert (row.state, row.result, row.to_agent, row.target) == (
        "completed",
        "answered",
        None,
        "社区卫生服务中心",
    )
    far = desk.asterisk.calls("originate")[1]
    assert (far.params["endpoint"], far.params["appArgs"]) == (OUTSIDE, "transfer")
    assert desk.took == ["mei"] and result.agent == "mei"
    assert state(db, "mei") == ("wrap_up", "transferred"), "the call is still mei's to wrap up"


@pytest.mark.parametrize(("number", "code"), [("+8613900000000", "dnc"), ("+8613700000000", "not_allowed")])
def test_outside_numbers_the_campaign_refuses_are_never_dialled(
    settings: Settings, db: Database, number: str, code: str
) -> None:
    agents_ready(db, "mei")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("number", number)

    result, desk = handed_over(settings, db, {"mei": ANSWERS}, script, caller_leaves=12)
    row = the_transfer(db)
    assert (row.state, row.result, row.target) == ("failed", code, mask(number))
    assert row.number == number, "the full number is kept only for the process that dials it"
    assert len(desk.asterisk.calls("originate")) == 1 and result.agent == "mei"


# ---------------------------------------------------------------- steps and placed calls


def test_only_the_agent_on_the_call_may_transfer_it(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin", "bo")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin", agent="bo")

    _result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script, caller_leaves=10)
    assert (the_transfer(db).state, the_transfer(db).result) == ("failed", "not_your_call")
    assert len(desk.asterisk.calls("originate")) == 1


def test_a_second_transfer_while_one_is_under_way_is_refused(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin", "bo")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")
        await desk.ask("agent", "bo")

    handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script, caller_leaves=12)
    with db.session() as s:
        assert s.scalar(select(Transfer.target)) == "lin"


def test_a_call_mei_placed_herself_can_be_transferred_too(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")
    took: list[str] = []

    async def main() -> Any:
        async with fake_node(settings, db, {"mei": Callee(answer_after=0.5), "lin": ANSWERS}) as node:
            node.asterisk.callee(CUSTOMER, Callee(answer_after=1.0, hangup_on="answer", hangup_after=30))
            desk = Desk(node.asterisk, db)

            async def noted(agent: str) -> None:
                took.append(agent)

            async def script() -> None:
                await asyncio.sleep(6)
                xfer = await desk.ask("agent", "lin")
                await asyncio.sleep(6)
                await desk.step(xfer, "complete")

            deps = HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues())
            request = PlacedCallRequest(
                call_id="att-9", agent="mei", agent_endpoint=endpoint_of(db, "mei").removeprefix("PJSIP/"),
                destination=CUSTOMER, origin=ORIGIN, on_agent=noted,
            )  # fmt: skip
            acting = asyncio.create_task(script())
            result = await PlacedCall(deps, request).run()
            await acting
            return result

    result = run_virtual(main())
    assert (result.outcome, result.agent, took) == ("connected", "lin", ["lin"])
    assert the_transfer(db).state == "completed"
    assert state(db, "lin") == ("wrap_up", "call_ended")


def test_complete_is_refused_for_a_blind_or_finished_transfer(db: Database) -> None:
    make_agents(db, {"mei": [], "lin": []})
    available(db, "lin")
    with db.session() as s:
        row = service.request_transfer(s, TransferAsk("mei", "c1", "agent", "lin", "blind"), utcnow())
        with pytest.raises(TransferRefused) as refused:
            service.request_step(s, "mei", row.id, "complete", utcnow())
        assert refused.value.code == "not_consulting"
        with pytest.raises(TransferRefused) as other:
            service.request_step(s, "lin", row.id, "cancel", utcnow())
        assert other.value.status == 404


def test_asterisk_failing_mid_transfer_leaves_mei_with_the_caller(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        consult = lambda r: str(r.params.get("bridgeId", "")).startswith("consult-")  # noqa: E731
        desk.asterisk.fail("create_bridge", when=consult)  # the consult bridge cannot be made
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script, caller_leaves=20)
    row = the_transfer(db)
    assert (row.state, row.result) == ("failed", "error")
    assert (result.agent, result.ended_by) == ("mei", "customer"), "mei talked with the caller to the end"
    assert state(db, "lin") == ("available", "consult_ended")
    last = desk.asterisk.calls("add_channel")[-1]
    assert len(last.params["channel"]) == 2, "caller and mei back in their bridge"


def test_a_colleague_who_cannot_be_rung_is_freed_and_mei_keeps_the_caller(
    settings: Settings, db: Database
) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        desk.asterisk.fail("originate", when=lambda r: str(r.params.get("channelId", "")).startswith("xfer-"))
        await asyncio.sleep(5)
        await desk.ask("agent", "lin")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script, caller_leaves=15)
    row = the_transfer(db)
    assert (row.state, row.result) == ("failed", "error")
    assert result.agent == "mei" and state(db, "lin") == ("available", "transfer_failed")
    assert len(desk.asterisk.calls("add_channel")[-1].params["channel"]) == 2, "caller and mei together again"


def test_mei_goes_back_then_consults_lin_again_and_joins(settings: Settings, db: Database) -> None:
    agents_ready(db, "mei", "lin")

    async def script(desk: Desk) -> None:
        await asyncio.sleep(5)
        first = await desk.ask("agent", "lin")
        await asyncio.sleep(4)
        await desk.step(first, "cancel")
        await asyncio.sleep(3)
        second = await desk.ask("agent", "lin")
        with db.session() as s:
            seen = [(t.state, t.result, t.action) for t in s.scalars(select(Transfer))]
        assert second, f"refused: {desk.errors} {seen}"
        await asyncio.sleep(4)
        await desk.step(second, "complete")

    result, desk = handed_over(settings, db, {"mei": ANSWERS, "lin": ANSWERS}, script)
    with db.session() as s:
        rows = [(t.state, t.to_agent) for t in s.scalars(select(Transfer).order_by(Transfer.requested_at))]
    assert rows == [("cancelled", None), ("completed", "lin")]
    assert (result.agent, desk.took) == ("lin", ["mei", "lin"])
