"""Scorecards: weighted sections of weighted items, auto-fail items, and the score they give.

A scorecard is a YAML file in `config/qa/` (see `welfare_call.yaml`):

    name: welfare_call
    title: {zh-CN: 老人关怀回访, en: Elder welfare call}
    sections:
      - key: opening
        title: {zh-CN: 开场, en: Opening}
        weight: 20
        items:
          - {key: greeting, text: "Greeted and named the service", type: yes_no, weight: 1}
          - {key: rapport, text: "Warmth and patience", type: scale, max: 4, weight: 2}
          - {key: identity, text: "Verified identity before personal details", type: yes_no,
             auto_fail: true}

Score (0-100): within a section, Σ weight × value / Σ weight over the items not answered "na"
(yes = 1, no = 0, a scale point v of max = v / max); overall, the sections' fractions weighted by
section weight, over the sections with at least one answered item. An auto-fail item answered
"no" (or 0 on a scale) makes the whole score 0, whatever the rest.

Every text a person reads (`title`, `text`, `help`) is either one string or a mapping of language
tags to strings; reviewers and agents read it in their own language (`say()`, core.i18n.localised),
zh-CN when theirs is missing. The shipped cards give zh-CN and en.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.i18n import _, localised

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "qa"
NA = "na"
Answer = str | int
# A text people read: one string, or {language tag: string}.
Text = str | dict[str, str]


def say(text: Text | None) -> str:
    """The text in the reader's language (zh-CN when theirs is not given)."""
    return localised(text) if text is not None else ""


def _texts(value: Text | None) -> Text | None:
    if isinstance(value, dict) and (not value or not all(str(v).strip() for v in value.values())):
        raise ValueError("give the text in at least one language, e.g. {zh-CN: ..., en: ...}")
    return value


class ScorecardError(ValueError):
    """A scorecard file or a set of answers that does not fit; the message says where."""


class ItemType(StrEnum):
    yes_no = "yes_no"
    scale = "scale"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: Text
    help: Text | None = None
    type: ItemType = ItemType.yes_no
    max: int = Field(default=1, ge=1, le=10)  # scale: 0..max
    weight: float = Field(default=1.0, ge=0)
    auto_fail: bool = False
    na_allowed: bool = True

    _check_text = field_validator("text", "help")(_texts)

    def choices(self) -> list[str]:
        base = ["yes", "no"] if self.type is ItemType.yes_no else [str(v) for v in range(self.max + 1)]
        return [*base, NA] if self.na_allowed else base


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: Text
    weight: float = Field(default=1.0, ge=0)
    items: list[Item] = Field(min_length=1)

    _check_text = field_validator("title")(_texts)


class Scorecard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: Text
    version: int = 1
    pass_mark: float = Field(default=80.0, ge=0, le=100)
    sections: list[Section] = Field(min_length=1)

    _check_text = field_validator("title")(_texts)

    @model_validator(mode="after")
    def _unique_keys(self) -> Scorecard:
        keys = [i.key for s in self.sections for i in s.items]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"item keys must be unique across the card: {', '.join(dupes)}")
        return self

    def items(self) -> list[Item]:
        return [i for s in self.sections for i in s.items]


class Score(BaseModel):
    score: float  # 0-100, rounded to 0.1
    raw_score: float  # before auto-fail
    auto_failed: bool
    failed_items: list[str]
    passed: bool
    sections: dict[str, float | None]  # per section fraction × 100 (None: all na)


def load(name: str, folder: Path | None = None) -> Scorecard:
    path = (folder or CONFIG_DIR) / f"{name}.yaml"
    if not path.is_file():
        raise ScorecardError(_("scorecard '{name}': no file {path}", name=name, path=path))
    return parse(path.read_text(encoding="utf-8"), str(path))


def parse(text: str, where: str = "scorecard") -> Scorecard:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScorecardError(_("{where}: not YAML ({error})", where=where, error=exc)) from exc
    try:
        return Scorecard.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ScorecardError(f"{where}: {problems}") from exc


def available(folder: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (folder or CONFIG_DIR).glob("*.yaml") if p.stem != "sampling")


def normalise(card: Scorecard, answers: dict[str, Any]) -> dict[str, Answer]:
    """Check that every item is answered with one of its choices; scale answers become ints."""
    out: dict[str, Answer] = {}
    problems = []
    known = {i.key for i in card.items()}
    for extra in sorted(set(answers) - known):
        problems.append(_("{key}: not an item of {card}", key=extra, card=card.name))
    for item in card.items():
        raw = answers.get(item.key)
        value = "" if raw is None else str(raw).strip().lower()
        if value not in item.choices():
            problems.append(
                _(
                    "{key} ({text}): answer one of {choices}",
                    key=item.key,
                    text=say(item.text),
                    choices=", ".join(item.choices()),
                )
            )
            continue
        out[item.key] = int(value) if item.type is ItemType.scale and value != NA else value
    if problems:
        raise ScorecardError("; ".join(problems))
    return out


def _value(item: Item, answer: Answer) -> float:
    if item.type is ItemType.yes_no:
        return 1.0 if answer == "yes" else 0.0
    return int(answer) / item.max


def score(card: Scorecard, answers: dict[str, Any]) -> Score:
    """The weighted score of a complete set of answers (see the module's docstring)."""
    given = normalise(card, answers)
    failed = [
        i.key for i in card.items() if i.auto_fail and given[i.key] != NA and _value(i, given[i.key]) == 0.0
    ]
    sections: dict[str, float | None] = {}
    total = weights = 0.0
    for s in card.sections:
        num = den = 0.0
        for i in s.items:
            if given[i.key] == NA:
                continue
            num += i.weight * _value(i, given[i.key])
            den += i.weight
        if den == 0:
            sections[s.key] = None
            continue
        frac = num / den
        sections[s.key] = round(100 * frac, 1)
        total += s.weight * frac
        weights += s.weight
    raw = round(100 * total / weights, 1) if weights else 0.0
    final = 0.0 if failed else raw
    return Score(
        score=final,
        raw_score=raw,
        auto_failed=bool(failed),
        failed_items=failed,
        passed=not failed and final >= card.pass_mark,
        sections=sections,
    )
