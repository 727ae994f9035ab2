"""An inbound line's calls transferred to the outside numbers the line lists (both databases): the
line's settings, the gate the call's process asks (listed by name or number, never a number on
do-not-call, nothing else), and the hotline handing the gate to the hand-over with the call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from agents.handover import Handover, HandoverRequest, HandoverResult
from agents.transfer.service import TransferRefused
from core.db import Database
from core.i18n import use_locale
from core.settings import AsteriskNode, Settings
from dialer.models import DncGlobal
from hotline.config import InboundConfigError, InboundNumber, load_config
from hotline.transfer_gate import check_line_number, line_gate
from tests.unit.test_hotline_fake_ari import HOTLINE, TUESDAY_10AM, presses, scenario
from tests.unit.test_hotline_fake_ari import settings as settings


async def awaited(value: Awaitable[str]) -> str:
    return await value


NUMBERS = {"区民政局": "010-6555 0000", "街道办": "+86 10 6555 0001"}


def test_a_line_lists_its_outside_numbers_and_a_wrong_one_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "hotline.yaml"
    path.write_text(
        "timezone: Asia/Shanghai\nnumbers:\n  '12345':\n    name: community-hotline\n"
        "    transfer_numbers:\n      区民政局: 010-6555 0000\n",
        encoding="utf-8",
    )
    assert load_config(path).numbers["12345"].transfer_numbers == {"区民政局": "010-6555 0000"}
    path.write_text(path.read_text(encoding="utf-8").replace("010-6555 0000", "问前台"), encoding="utf-8")
    with use_locale("zh-CN"), pytest.raises(InboundConfigError) as err:
        load_config(path)
    assert err.value.problems == ["第5行：numbers.12345.transfer_numbers：“问前台”（区民政局）不是电话号码"]


def test_the_gate_allows_listed_numbers_only_and_never_one_on_do_not_call(db: Database) -> None:
    with db.session() as s:
        assert check_line_number(s, NUMBERS, "区民政局") == "+861065550000"
        assert check_line_number(s, NUMBERS, "010 6555 0001") == "+861065550001", "asked for by its number"
        refusals = {}
        for wanted, numbers in (("13700000000", NUMBERS), ("前台", NUMBERS), ("区民政局", {})):
            with pytest.raises(TransferRefused) as err:
                check_line_number(s, numbers, wanted)
            refusals[wanted] = err.value.code
        assert refusals == {"13700000000": "not_allowed", "前台": "invalid_number", "区民政局": "not_allowed"}
        s.add(DncGlobal(phone_e164="+861065550000", source="test", added_by="test"))
        s.flush()
        with pytest.raises(TransferRefused) as err:
            check_line_number(s, NUMBERS, "区民政局")
        assert err.value.code == "dnc"


def test_the_gate_dials_through_the_node(db: Database) -> None:
    node = AsteriskNode(name="lab", dial_template="PJSIP/{number}@trunk")
    gate = line_gate(db, node, NUMBERS)
    assert gate is not None
    assert asyncio.run(awaited(gate("call-1", "区民政局"))) == "PJSIP/861065550000@trunk"
    assert line_gate(db, node, {}) is None, "a line without numbers: no outside transfers"


def test_the_hotline_hands_its_lines_gate_to_the_hand_over(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit import test_hotline_fake_ari as hotline_tests

    line = hotline_tests.CONFIG.numbers[HOTLINE]
    monkeypatch.setitem(
        hotline_tests.CONFIG.numbers, HOTLINE, line.model_copy(update={"transfer_numbers": NUMBERS})
    )
    settings.asterisk_nodes = [AsteriskNode(name="lab", dial_template="PJSIP/{number}@trunk")]
    asked: list[HandoverRequest] = []

    async def connect(self: Handover, request: HandoverRequest) -> HandoverResult:
        asked.append(request)
        return HandoverResult(outcome="caller_hangup")

    monkeypatch.setattr(Handover, "connect", connect)

    async def body(w: Any) -> None:
        await w.serve(w.caller(presses("1")))

    scenario(settings, db, body, now=TUESDAY_10AM)
    [request] = asked
    assert request.number_gate is not None
    assert (
        asyncio.run(awaited(request.number_gate(request.channel_id, "街道办"))) == "PJSIP/861065550001@trunk"
    )
    assert isinstance(InboundNumber(name="x").transfer_numbers, dict)
