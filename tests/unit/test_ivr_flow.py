"""IVR flow format: parsing, the model, placeholders, the line-tracking loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.located_yaml import LocatedYamlError, load_located
from ivr.check import FlowError, check_text, load_flow
from ivr.flow import GatherNode, PlayNode, Prompt, TransferNode, placeholders, render

CONFIG = Path(__file__).resolve().parents[2] / "config" / "ivr"

MINIMAL = """\
name: tiny
start: hello
nodes:
  hello:
    type: play
    say: "{name}您好"
    next: ask
  ask:
    type: gather
    prompt: "请按一"
    on: {1: ok, 0: agent}
    no_input: bye
  ok: {type: set_outcome, outcome: confirmed, next: bye}
  agent: {type: transfer, skill: general}
  bye: {type: hangup}
"""


def test_minimal_flow_parses_with_ids_and_defaults() -> None:
    flow, problems = check_text(MINIMAL)
    assert problems == [] and flow is not None
    assert flow.name == "tiny" and flow.start == "hello" and flow.voice == "cmn"
    assert list(flow.nodes) == ["hello", "ask", "ok", "agent", "bye"]
    assert all(node.id == key for key, node in flow.nodes.items())
    ask = flow.nodes["ask"]
    assert isinstance(ask, GatherNode)
    assert ask.on == {"1": "ok", "0": "agent"}  # digit keys stay text; `on` is not YAML's True
    assert ask.valid_entries() == ["1", "0"]
    assert (ask.timeout, ask.retries, ask.max_digits, ask.invalid) == (5.0, 2, 1, None)
    assert ask.prompt == Prompt(say="请按一")
    assert isinstance(flow.nodes["agent"], TransferNode)


@pytest.mark.parametrize("name", ["vaccination_reminder", "elder_welfare_check", "government_notice"])
def test_example_flows_are_clean(name: str) -> None:
    flow = load_flow(CONFIG / f"{name}.yaml", fields=["name", "clinic", "date"])
    assert flow.name == name
    assert flow.source == (CONFIG / f"{name}.yaml").resolve()


def test_vaccination_digits() -> None:
    flow = load_flow(CONFIG / "vaccination_reminder.yaml")
    ask = flow.nodes["ask"]
    assert isinstance(ask, GatherNode)
    outcomes = {}
    for digit, target in ask.on.items():
        node = flow.nodes[target]
        outcomes[digit] = getattr(node, "outcome", None)
    assert outcomes == {"1": "confirmed", "2": "reschedule", "0": "agent", "9": "opted_out"}


def test_government_notice_plays_twice_and_repeats_bounded() -> None:
    flow = load_flow(CONFIG / "government_notice.yaml")
    notice = flow.nodes["notice"]
    assert isinstance(notice, PlayNode) and notice.repeat == 2
    assert notice.max_visits and notice.over_limit == "bye"
    ask = flow.nodes["ask"]
    assert isinstance(ask, GatherNode) and ask.on == {"1": "notice"}


def test_elder_welfare_escalates_on_help_and_silence() -> None:
    flow = load_flow(CONFIG / "elder_welfare_check.yaml")
    assert getattr(flow.nodes["help"], "escalate", False) and getattr(
        flow.nodes["unreached"], "escalate", False
    )
    assert isinstance(flow.nodes["to_agent"], TransferNode)


def test_load_flow_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(MINIMAL.replace("next: ask", "next: asl").replace("skill: general", "skil: x"))
    with pytest.raises(FlowError) as info:
        load_flow(path)
    codes = {p.code for p in info.value.problems}
    assert {"unknown_node", "schema"} <= codes
    assert str(path) in str(info.value)


def test_placeholders_and_render() -> None:
    assert placeholders("{name}您好，{clinic}提醒您{date}接种，{{字面}}") == (["name", "clinic", "date"], [])
    assert placeholders("坏的{ }和{a b}和}") == ([], ["{ }", "{a b}", "}"])
    text, missing = render("{name}您好，{clinic}。{{x}}", {"name": "张三", "clinic": ""})
    assert text == "张三您好，。{x}" and missing == ["clinic"]
    assert render("{n}岁", {"n": 80}) == ("80岁", [])


def test_prompt_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="必须且只能给一个"):
        Prompt(say="a", file="b.wav")
    with pytest.raises(ValueError, match="必须且只能给一个"):
        Prompt()
    assert Prompt.model_validate("文本") == Prompt(say="文本")


def test_located_loader_marks_and_duplicates() -> None:
    located = load_located("a: 1\nnodes:\n  x: {next: y}\n  on: 2\n  x: 3\n")
    assert located.data == {"a": 1, "nodes": {"x": 3, "on": 2}}
    assert located.marks[("nodes", "x", "next")].line == 3
    assert located.marks[("nodes", "on")].line == 4
    assert [(p, m.line) for p, m in located.duplicates] == [(("nodes", "x"), 5)]
    assert located.mark(("nodes", "missing", "deeper")) == located.marks[("nodes",)]


def test_located_loader_syntax_error_has_place() -> None:
    with pytest.raises(LocatedYamlError) as info:
        load_located("a: [1, 2\nb: 3\n")
    assert info.value.mark is not None and info.value.mark.line >= 2
