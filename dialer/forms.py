"""Forms: the questions an agent answers about a call, in a campaign's (or inbound line's) YAML.

    form:
      title: 关怀回访记录
      questions:
        - {key: feeling, type: choice, label: 身体状况, required: true,
           choices: [{value: good, label: 良好}, {value: unwell, label: 不适}]}
        - {key: symptoms, type: text, label: 哪里不适, max_length: 200, show_if: {feeling: unwell}}
        - {key: age, type: number, label: 年龄, min: 0, max: 120, integer: true}
        - {key: visit_on, type: date, label: 上门日期}

A question is ``choice`` (one of its ``choices``), ``number`` (``min``, ``max``, ``integer``),
``date`` (``YYYY-MM-DD``, optional ``min``/``max`` dates) or ``text`` (``max_length``). ``required``
applies only while the question is shown; ``show_if`` shows it only when every named earlier
question has the given answer (or one of a list). An answer to a question that is hidden is not
kept. ``record: case`` makes each saved form a case record (the 12345 hotline's 工单, see
:mod:`hotline.cases`), which needs the questions ``category``, ``summary`` and ``status``.

:func:`check_answers` validates answers against a form and names each failing question with a
sentence in the current locale (core.i18n); the answers that pass are returned as well, so a
caller can keep them while the agent corrects the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.i18n import _

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_QUESTIONS = 100  # the wrap-up takes at most 100 answers
MAX_TEXT = 2000  # and at most 2,000 characters in one
QuestionType = Literal["choice", "number", "date", "text"]
Answer = str | int | float | bool | None
CASE_KEYS = ("category", "summary", "status")  # what a case record cannot do without
CASE_CLOSED = "closed"  # the status value that takes a case off the supervisors' list


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(min_length=1, max_length=64, description="stored and exported")
    label: str = Field(min_length=1, max_length=100, description="what the agent reads (zh-CN)")
    label_en: str = Field(default="", max_length=100)

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="stored and exported (answer.<key>); a-z, 0-9, _")
    type: QuestionType
    label: str = Field(min_length=1, max_length=200, description="what the agent reads (zh-CN)")
    label_en: str = Field(default="", max_length=200)
    hint: str = Field(default="", max_length=300, description="said after the label")
    required: bool = False
    choices: list[Choice] = Field(default_factory=list)
    min: float | date | None = None
    max: float | date | None = None
    integer: bool = False
    max_length: int = Field(default=500, ge=1, le=MAX_TEXT)
    show_if: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not KEY_RE.match(v):
            raise ValueError(_("1-64 lower-case letters, digits or _, starting with a letter (e.g. age)"))
        return v

    @field_validator("show_if", mode="before")
    @classmethod
    def _conditions(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            return v
        out: dict[str, str | list[str]] = {}
        for key, wanted in v.items():
            items = wanted if isinstance(wanted, list) else [wanted]
            texts = [str(w).lower() if isinstance(w, bool) else str(w) for w in items]
            out[str(key)] = texts if isinstance(wanted, list) else texts[0]
        return out

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.type == "choice":
            if len(self.choices) < 2:
                raise ValueError(_("choices: a choice question needs at least two choices"))
            values = [c.value for c in self.choices]
            twice = next((v for v in values if values.count(v) > 1), None)
            if twice is not None:
                raise ValueError(_("choices: value {value} is listed twice", value=twice))
        elif self.choices:
            raise ValueError(_("choices: only a choice question has choices"))
        bounds = [b for b in (self.min, self.max) if b is not None]
        if self.type == "number" and any(isinstance(b, date) for b in bounds):
            raise ValueError(_("min: a number question's bounds are numbers"))
        if self.type == "date" and any(not isinstance(b, date) for b in bounds):
            raise ValueError(_("min: a date question's bounds are dates (YYYY-MM-DD)"))
        if self.type in ("choice", "text") and bounds:
            raise ValueError(_("min: only number and date questions have bounds"))
        if self.min is not None and self.max is not None and self.min > self.max:  # type: ignore[operator]
            raise ValueError(_("max: is below min"))
        return self

    def shown(self, answers: Mapping[str, Answer]) -> bool:
        """Whether the question is asked, given the answers before it."""
        for key, wanted in self.show_if.items():
            given = answers.get(key)
            text = "" if given is None else (str(given).lower() if isinstance(given, bool) else str(given))
            if text not in (wanted if isinstance(wanted, list) else [wanted]):
                return False
        return True

    def public(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_defaults=True)
        data.setdefault("required", False)
        data["key"], data["type"], data["label"] = self.key, self.type, self.label
        if self.type == "text":
            data["max_length"] = self.max_length
        return data


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(default="", max_length=100)
    record: Literal["answers", "case"] = Field(
        default="answers", description="answers: kept with the call's attempt; case: a case record"
    )
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _whole(self) -> Form:
        seen: dict[str, Question] = {}
        for n, q in enumerate(self.questions):
            if q.key in seen:
                raise ValueError(_("questions.{n}.key: {key} is used twice", n=n, key=q.key))
            for key, wanted in q.show_if.items():
                earlier = seen.get(key)
                if earlier is None:
                    raise ValueError(
                        _(
                            "questions.{n}.show_if: {key} is not a question before this one",
                            n=n,
                            key=key,
                        )
                    )
                values = {c.value for c in earlier.choices}
                for w in wanted if isinstance(wanted, list) else [wanted]:
                    if earlier.type == "choice" and w not in values:
                        raise ValueError(
                            _(
                                "questions.{n}.show_if: {value} is not a choice of {key}",
                                n=n,
                                value=w,
                                key=key,
                            )
                        )
            seen[q.key] = q
        if self.record == "case":
            missing = [k for k in CASE_KEYS if k not in seen]
            if missing:
                raise ValueError(
                    _("questions: a case record needs the questions {keys}", keys=", ".join(missing))
                )
            status = seen["status"]
            if status.type != "choice" or CASE_CLOSED not in {c.value for c in status.choices}:
                raise ValueError(_("questions: a case's status is a choice with the value closed"))
        return self

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)

    @property
    def keys(self) -> list[str]:
        return [q.key for q in self.questions]

    def public(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "record": self.record,
            "questions": [q.public() for q in self.questions],
        }


def form_of(data: Mapping[str, Any] | None) -> Form | None:
    """A stored form (JSON) as a Form; None for none."""
    return Form.model_validate(dict(data)) if data else None


# ------------------------------------------------------------------------------ answers


@dataclass
class AnswerCheck:
    """What :func:`check_answers` made of some answers: the good ones, and why the others failed."""

    clean: dict[str, Answer] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # question key -> a sentence

    @property
    def ok(self) -> bool:
        return not self.errors


def check_answers(form: Form, answers: Mapping[str, Any], *, complete: bool) -> AnswerCheck:
    """Validate `answers` (question key -> value) against `form`.

    Every answer is checked against its question (its type, choices, bounds, length); with
    `complete` a required question that is shown must be answered. Answers to hidden questions are
    dropped; a key that is no question is an error. Empty text and None mean unanswered."""
    out = AnswerCheck()
    for key in answers:
        if form.question(key) is None:
            out.errors[key] = _("{key} is not a question of this form", key=key)
    for q in form.questions:
        if not q.shown(out.clean):
            continue
        raw = answers.get(q.key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if complete and q.required:
                out.errors[q.key] = _("{label}: an answer is required", label=q.label)
            continue
        try:
            out.clean[q.key] = _answer(q, raw)
        except ValueError as exc:
            out.errors[q.key] = f"{q.label}: {exc}"
    return out


def _answer(q: Question, raw: Any) -> Answer:
    """One answer as it is stored, or ValueError saying what is wrong with it."""
    if q.type == "choice":
        text = str(raw).lower() if isinstance(raw, bool) else str(raw).strip()
        values = [c.value for c in q.choices]
        if text not in values:
            labels = "、".join(f"{c.label} ({c.value})" for c in q.choices)
            raise ValueError(_("choose one of {choices}", choices=labels))
        return text
    if q.type == "number":
        return _number(q, raw)
    if q.type == "date":
        return _date(q, raw)
    text = str(raw).strip()
    if len(text) > q.max_length:
        raise ValueError(_("at most {max} characters (this is {n})", max=q.max_length, n=len(text)))
    return text


def _number(q: Question, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ValueError(_("a number, e.g. 12"))
    try:
        value = float(str(raw).strip().replace(",", "")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        raise ValueError(_("a number, e.g. 12")) from None
    if not math.isfinite(value):
        raise ValueError(_("a number, e.g. 12"))
    if q.integer and value != int(value):
        raise ValueError(_("a whole number"))
    low, high = q.min, q.max
    if isinstance(low, int | float) and value < low:
        raise ValueError(_("at least {min}", min=format(low, "g")))
    if isinstance(high, int | float) and value > high:
        raise ValueError(_("at most {max}", max=format(high, "g")))
    return int(value) if q.integer or value == int(value) else value


def _date(q: Question, raw: Any) -> str:
    try:
        day = raw if isinstance(raw, date) else date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValueError(_("a date written YYYY-MM-DD, e.g. 2026-12-31")) from None
    if isinstance(q.min, date) and day < q.min:
        raise ValueError(_("on or after {day}", day=q.min.isoformat()))
    if isinstance(q.max, date) and day > q.max:
        raise ValueError(_("on or before {day}", day=q.max.isoformat()))
    return day.isoformat()
