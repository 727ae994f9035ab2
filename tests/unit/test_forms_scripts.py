"""Forms and call scripts without a database: the form schema and its errors (naming the key and
the line of the YAML), conditions, answers checked per question, scripts rendered safe with
Chinese column names, the example files shipped in config/."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.i18n import use_locale
from dialer.campaigns import SpecError, load_spec_file, load_spec_text
from dialer.forms import Form, check_answers
from dialer.scripts import pop_fields, render_script
from hotline.config import InboundConfigError, load_config

REPO = Path(__file__).resolve().parents[2]

FORM_YAML = """\
kind: agent
form:
  title: 回访
  questions:
    - key: reached
      type: choice
      label: 是否本人
      required: true
      choices: [{value: "yes", label: 是}, {value: "no", label: 否}]
    - key: age
      type: number
      label: 年龄
      min: 0
      max: 120
      integer: true
      show_if: {reached: "yes"}
      required: true
    - key: visit_on
      type: date
      label: 上门日期
      min: 2026-01-01
    - key: note
      type: text
      label: 备注
      max_length: 10
"""


def _form() -> Form:
    spec = load_spec_text(FORM_YAML, "f1")
    assert spec.form is not None
    return spec.form


@pytest.mark.usefixtures("english")
def test_a_form_error_names_the_key_and_its_line() -> None:
    bad = FORM_YAML.replace("      max: 120\n", "      max: -1\n")
    with pytest.raises(SpecError) as err:
        load_spec_text(bad, "f1", "camp.yaml")
    assert "line 14: form.questions.1.max:" in str(err.value)  # the line of age's max
    unknown = FORM_YAML.replace("type: date", "type: datum")
    with pytest.raises(SpecError) as err:
        load_spec_text(unknown, "f1", "camp.yaml")
    assert "line 19: form.questions.2.type" in str(err.value)


@pytest.mark.usefixtures("english")
def test_a_condition_must_name_an_earlier_question_and_one_of_its_choices() -> None:
    later = FORM_YAML.replace('show_if: {reached: "yes"}', "show_if: {note: x}")
    with pytest.raises(SpecError) as err:
        load_spec_text(later, "f1", "camp.yaml")
    assert "line 16: form.questions.1.show_if" in str(err.value)
    assert "note" in str(err.value)
    wrong = FORM_YAML.replace('show_if: {reached: "yes"}', "show_if: {reached: maybe}")
    with pytest.raises(SpecError) as err:
        load_spec_text(wrong, "f1", "camp.yaml")
    assert "form.questions.1.show_if" in str(err.value) and "maybe" in str(err.value)


def test_answers_are_checked_per_question_and_name_it_in_chinese() -> None:
    form = _form()
    with use_locale("zh_CN"):
        check = check_answers(
            form, {"reached": "yes", "age": "130", "visit_on": "2025-12-31", "note": "x" * 11, "bogus": 1},
            complete=True,
        )  # fmt: skip
    assert set(check.errors) == {"age", "visit_on", "note", "bogus"}
    assert check.errors["age"].startswith("年龄")
    assert check.clean == {"reached": "yes"}, "what passed is kept"
    with use_locale("en"):
        check = check_answers(form, {"reached": "yes", "age": "41.5"}, complete=True)
    assert check.errors == {"age": "年龄: a whole number"}


def test_required_only_while_shown_and_hidden_answers_dropped() -> None:
    form = _form()
    missing = check_answers(form, {"reached": "yes"}, complete=True)
    assert list(missing.errors) == ["age"]
    assert check_answers(form, {"reached": "yes"}, complete=False).ok, "a draft may leave it out"
    hidden = check_answers(form, {"reached": "no", "age": 40}, complete=True)
    assert hidden.ok and hidden.clean == {"reached": "no"}, "age is not asked when not reached"
    fine = check_answers(form, {"reached": "yes", "age": "81", "visit_on": "2026-03-01"}, complete=True)
    assert fine.clean == {"reached": "yes", "age": 81, "visit_on": "2026-03-01"}


def test_a_case_form_needs_its_questions() -> None:
    with pytest.raises(ValueError, match="category"):
        Form.model_validate(
            {"record": "case", "questions": [{"key": "summary", "type": "text", "label": "摘要"}]}
        )


def test_script_escapes_everything_and_keeps_chinese_columns() -> None:
    script = (
        "# 开场白\n{姓名}您好，我是{agent}。<script>alert(1)</script>\n\n"
        "## 核对\n- 社区：{社区}\n- 电话 {phone}\n- [链接](javascript:alert(1)) {{字面}} {缺少}\n"
    )
    out = render_script(
        script,
        {"name": "王奶奶", "agent": "mei", "社区": "朝阳<img src=x onerror=alert(1)> **粗**",
         "phone": "+8613800138000"},
    )  # fmt: skip
    html = out.html
    assert "<h2>开场白</h2>" in html and "<h3>核对</h3>" in html, "headings to jump between"
    assert "王奶奶您好，我是mei" in html
    assert "<script" not in html and "<img" not in html and "<a " not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html
    assert "**粗**" in html and "<strong>" not in html, "a list cell is text, never markup"
    assert "138****8000" in html and "13800138000" not in html
    assert "{字面}" in html and "[缺少?]" in html
    assert out.missing == ["缺少"]
    assert pop_fields(script, ["小区"]) == ["小区", "社区", "缺少"]


def test_the_shipped_examples_load() -> None:
    campaigns = REPO / "config" / "campaigns"
    for name in ("elder-welfare", "census-follow-up", "epi-follow-up"):
        spec = load_spec_file(campaigns / f"{name}.yaml", f"t-{name}")
        assert spec.form is not None and spec.script and spec.script.startswith("# ")
    line = load_config(REPO / "config" / "inbound" / "hotline.yaml").numbers["12345"]
    assert line.form is not None and line.form.record == "case" and line.script


@pytest.mark.usefixtures("english")
def test_an_inbound_form_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "hotline.yaml"
    path.write_text(
        "numbers:\n  '12345':\n    name: l\n    form:\n      record: case\n      questions:\n"
        "        - {key: category, type: choice, label: 类别, choices: [{value: a, label: A}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InboundConfigError) as err:
        load_config(path)
    assert "line 7: numbers.12345.form.questions.0" in str(err.value)


def test_a_date_answer_is_no_phone_number() -> None:
    from core.phones import mask_in_text

    assert mask_in_text("回访 2026-03-01，电话 13800138000") == "回访 2026-03-01，电话 138****8000"
