"""`warmline ivr check`: every kind of problem, each reported with its node and line:column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.check import Problem, check_file, check_text
from tests.utils.cli import CliRunner
from warmline.cli import app

# Written against the English messages (zh-CN is the default; see conftest's `english`); the Chinese
# ones are read by test_cli_problems_in_chinese_with_stable_codes.
pytestmark = pytest.mark.usefixtures("english")

CONFIG = Path(__file__).resolve().parents[2] / "config" / "ivr"
GOOD = """\
name: ok
start: hello
fields: [name]
nodes:
  hello: {type: play, say: "{name}您好", next: ask}
  ask:
    type: gather
    prompt: "请按一"
    on: {"1": bye}
    no_input: bye
  bye: {type: hangup}
"""


def problems(text: str, **kw: object) -> list[Problem]:
    _flow, found = check_text(text, **kw)  # type: ignore[arg-type]
    return found


def one(found: list[Problem], code: str) -> Problem:
    matching = [p for p in found if p.code == code]
    assert len(matching) == 1, found
    return matching[0]


def place(p: Problem) -> tuple[str | None, int | None, int | None]:
    return p.node, p.line, p.column


def test_clean_flow_has_no_problems() -> None:
    assert problems(GOOD, fields=["name", "phone"]) == []


def test_unknown_next_node() -> None:
    found = problems(GOOD.replace("next: ask", "next: aks"))
    p = one(found, "unknown_node")
    assert place(p) == ("hello", 5, 40) and "'aks'" in p.message and p.path == "nodes.hello.next"
    # `ask` (and so `bye`) are now unreachable too, each said at its own line
    assert [place(p) for p in found if p.code == "unreachable"] == [("ask", 6, 3), ("bye", 11, 3)]


def test_unknown_gather_target_points_at_the_digit() -> None:
    p = one(problems(GOOD.replace('{"1": bye}', '{"1": bye, "2": nowhere}')), "unknown_node")
    assert place(p) == ("ask", 9, 20) and p.path == "nodes.ask.on.2"


def test_unknown_start() -> None:
    p = one(problems(GOOD.replace("start: hello", "start: helo")), "unknown_node")
    assert (p.line, p.column, p.node) == (2, 1, None) and "start node 'helo'" in p.message


def test_unreachable_node() -> None:
    p = one(problems(GOOD + "  spare: {type: hangup}\n"), "unreachable")
    assert place(p) == ("spare", 12, 3)


def test_missing_prompt_file(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(GOOD.replace('prompt: "请按一"', "prompt: {file: prompts/ask.wav}"))
    _f, found = check_file(flow)
    p = one(found, "missing_prompt")
    assert place(p) == ("ask", 8, 5) and "prompts/ask.wav" in p.message
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "ask.wav").write_bytes(b"RIFF")
    assert check_file(flow)[1] == []


def test_prompt_file_found_in_prompts_dir(tmp_path: Path) -> None:
    (tmp_path / "ask.wav").write_bytes(b"RIFF")
    text = GOOD.replace('prompt: "请按一"', "prompt: {file: ask.wav}")
    assert one(problems(text), "missing_prompt").node == "ask"
    assert problems(text, prompt_dirs=[tmp_path]) == []


def test_unknown_field_against_the_lists_columns() -> None:
    text = GOOD.replace('say: "{name}您好"', 'say: "{name}您好，{clinic}"')
    found = problems(text, fields=["name", "date"])
    p = one(found, "unknown_field")
    assert place(p) == ("hello", 5, 23) and "{clinic}" in p.message and "name, date" in p.message
    # the flow's own `fields:` declares what it needs; a list without `name` is reported there
    found = problems(GOOD, fields=["phone"])
    assert [(p.code, p.line, p.column) for p in found] == [("unknown_field", 3, 10), ("unknown_field", 5, 23)]


def test_without_fields_the_flows_declared_fields_are_used() -> None:
    p = one(problems(GOOD.replace("{name}您好", "{nam}您好")), "unknown_field")
    assert p.node == "hello"


def test_malformed_placeholder() -> None:
    assert one(problems(GOOD.replace("{name}您好", "{name}您好 {a b}")), "placeholder").node == "hello"


def test_gather_without_valid_digits() -> None:
    text = GOOD.replace('    on: {"1": bye}\n', "    next: bye\n")
    p = one(problems(text), "no_valid_digits")
    assert place(p) == ("ask", 6, 3)


def test_gather_digit_problems() -> None:
    text = GOOD.replace('    on: {"1": bye}\n', '    valid: [1, 2, "12", x]\n    on: {"1": bye, "3": bye}\n')
    found = problems(text)
    assert place(one(found, "invalid_digit")) == ("ask", 10, 20)  # on.3 not among valid
    no_target = [p for p in found if p.code == "no_target"]
    assert [(p.line, p.column) for p in no_target] == [(9, 16), (9, 19), (9, 25)]  # 2, 12, x
    schema = sorted(p.message for p in found if p.code == "schema")
    assert any("longer than max_digits" in m for m in schema) and any("'x' is not a key" in m for m in schema)


def test_loop_with_no_exit() -> None:
    text = GOOD.replace('    on: {"1": bye}\n', '    on: {"1": a}\n') + (
        "  a: {type: play, say: 甲, next: b}\n  b: {type: play, say: 乙, next: a}\n"
    )
    p = one(problems(text), "loop_no_exit")
    assert place(p) == ("a", 12, 3) and "a -> b -> a" in p.message


def test_loop_with_an_exit_is_fine() -> None:
    notice = CONFIG / "government_notice.yaml"
    assert check_file(notice)[1] == []  # notice -> ask -> notice, exits by no_input and over_limit


def test_dead_end_has_no_path_to_an_ending() -> None:
    text = GOOD.replace(
        'hello: {type: play, say: "{name}您好", next: ask}', 'hello: {type: play, say: "{name}您好"}'
    )
    found = problems(text)
    p = one(found, "no_ending")
    assert place(p) == ("hello", 5, 3) and "no `next`" in p.message


def test_no_path_from_start_to_an_ending() -> None:
    text = "name: x\nstart: a\nnodes:\n  a: {type: set_outcome, outcome: confirmed, next: b}\n" + (
        "  b: {type: branch, field: outcome, cases: {x: a}, default: a}\n"
    )
    p = one(problems(text), "loop_no_exit")
    assert p.node == "a"


def test_unknown_outcome() -> None:
    text = GOOD.replace(
        "  bye: {type: hangup}\n",
        "  bye: {type: set_outcome, outcome: confirmd, next: end}\n  end: {type: hangup}\n",
    )
    p = one(problems(text), "unknown_outcome")
    assert place(p) == ("bye", 11, 28)
    declared = text.replace("fields: [name]", "fields: [name]\noutcomes: [confirmd]")
    assert problems(declared) == []


def test_branch_on_unknown_field_and_input() -> None:
    text = (
        GOOD.replace('    on: {"1": bye}\n', '    on: {"1": br}\n')
        + "  br: {type: branch, field: age, cases: {'80': bye}, default: br2}\n"
        + ("  br2: {type: branch, field: input.nope, default: bye}\n")
    )
    found = [p for p in problems(text) if p.code == "unknown_field"]
    assert [(p.node, p.line) for p in found] == [("br", 12), ("br2", 13)]


def test_schema_errors_have_places() -> None:
    text = GOOD.replace(
        "  bye: {type: hangup}\n", "  bye: {type: hangup, colour: red}\n  x: {type: plya}\n  y: {say: hi}\n"
    )
    found = problems(text)
    assert [(p.node, p.line, p.column, p.message.split(";")[0]) for p in found if p.code == "schema"] == [
        ("bye", 11, 23, "unknown key `colour`"),
        ("x", 12, 7, "unknown node type 'plya'"),
        ("y", 13, 3, "node has no `type`"),
    ]


def test_max_visits_needs_over_limit() -> None:
    p = one(problems(GOOD.replace("next: ask}", "next: ask, max_visits: 2}")), "schema")
    assert p.node == "hello" and "over_limit" in p.message


def test_duplicate_keys_and_yaml_syntax() -> None:
    found = problems(GOOD + "  bye: {type: hangup}\n")
    assert place(one(found, "duplicate_key")) == (None, 12, 3)
    p = one(problems("name: x\nnodes: [\n"), "yaml")
    assert p.line is not None


def test_every_problem_is_reported_at_once() -> None:
    bad = """\
name: bad
start: intro
nodes:
  intro: {type: play, say: "{name}{clinc}", next: ask}
  ask:
    type: gather
    prompt: {file: nothere.wav}
    on: {"1": yes, "2": nowhere}
    no_input: bye
  yes: {type: set_outcome, outcome: confirmd, next: la}
  la: {type: play, say: a, next: lb}
  lb: {type: play, say: b, next: la}
  orphan: {type: hangup}
  bye: {type: hangup, extra: 1}
"""
    codes = sorted(p.code for p in problems(bad, fields=["name"]))
    assert codes == sorted(
        [
            "unknown_field",
            "missing_prompt",
            "unknown_node",
            "unknown_outcome",
            "loop_no_exit",
            "unreachable",
            "schema",
        ]
    )


# ------------------------------------------------------------------ the command


def test_cli_clean_exit_0(english: None) -> None:
    files = [
        str(CONFIG / f"{n}.yaml")
        for n in ("vaccination_reminder", "elder_welfare_check", "government_notice")
    ]
    res = CliRunner().invoke(app, ["ivr", "check", *files, "--fields", "name,clinic,date"])
    assert res.exit_code == 0, res.output
    assert res.output.count(": ok (flow ") == 3


def test_cli_problems_exit_2_with_places(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(GOOD.replace("next: ask", "next: aks"))
    res = CliRunner().invoke(app, ["ivr", "check", str(flow)])
    assert res.exit_code == 2
    assert f"{flow}:5:40: [unknown_node] node 'hello':" in res.output


def test_cli_problems_in_chinese_with_stable_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMLINE_LANG", "zh-CN")
    flow = tmp_path / "f.yaml"
    flow.write_text(GOOD.replace("next: ask", "next: aks"))
    res = CliRunner().invoke(app, ["ivr", "check", str(flow)])
    assert res.exit_code == 2
    assert f"{flow}:5:40：[unknown_node] 节点“hello”：`next` 指向节点“aks”，但该节点不存在" in res.output
    data = json.loads(CliRunner().invoke(app, ["ivr", "check", str(flow), "--json"]).output)
    assert {p["code"] for p in data["problems"]} >= {"unknown_node"}, "codes stay English for programs"
    assert any("指向节点" in p["message"] for p in data["problems"])


@pytest.mark.parametrize("fields", ["name,clinic,date", "phone"])
def test_cli_json(fields: str) -> None:
    res = CliRunner().invoke(
        app, ["ivr", "check", str(CONFIG / "vaccination_reminder.yaml"), "--fields", fields, "--json"]
    )
    data = json.loads(res.output)
    assert data["ok"] is (fields != "phone")
    assert res.exit_code == (0 if data["ok"] else 2)
    if not data["ok"]:
        assert {p["code"] for p in data["problems"]} == {"unknown_field"}
        assert all(p["line"] and p["column"] for p in data["problems"])


def test_cli_missing_file(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["ivr", "check", str(tmp_path / "nope.yaml"), "--json"])
    assert res.exit_code == 2 and json.loads(res.output)["problems"][0]["code"] == "file"
