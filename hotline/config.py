"""The hotline's numbers: per dialled number the menu flow, a fallback skill, opening hours, the
after-hours flow, the campaign that keeps callback requests, and the agents' call script and form
(``config/inbound/hotline.yaml``). A mistake in the file is reported with its line."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, ValidationError, field_validator

from agents.routing import ANY_SKILL
from core.i18n import _
from core.located_yaml import LocatedYamlError, load_located, validation_problems
from core.validation import where_text
from dialer.forms import Form
from dialer.lists import phones
from dialer.scripts import check_script

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def line_number(text: str, region: str = "CN") -> str | None:
    """A line's listed outside number (or one an agent asked for) as E.164, or None."""
    return phones.normalise(text, region, None).e164


def _day_keys(key: str) -> tuple[str, ...]:
    key = key.strip().lower()
    if key in ("daily", "every day", "all"):
        return DAYS
    if "-" in key:
        first, last = (k.strip() for k in key.split("-", 1))
        if first not in DAYS or last not in DAYS:
            raise ValueError(_("unknown day range '{key}' (use mon..sun, e.g. mon-fri)", key=key))
        i, j = DAYS.index(first), DAYS.index(last)
        return DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1]
    if key not in DAYS:
        raise ValueError(_("unknown day '{key}' (use mon..sun, a range like mon-fri, or daily)", key=key))
    return (key,)


def _span(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(p.strip()) for p in text.split("-", 1))
    except ValueError as exc:
        raise ValueError(_("opening hours '{text}': write HH:MM-HH:MM", text=text)) from exc
    if end <= start:
        raise ValueError(_("opening hours '{text}': the end is not after the start", text=text))
    return start, end


class ServiceLevel(BaseModel):
    """The line's promise: `level` of calls answered within `answer_within_s` (staffing forecasts)."""

    answer_within_s: float = Field(default=20, ge=0, le=3600)
    level: float = Field(default=0.8, gt=0, lt=1)


class InboundNumber(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    flow: str = "hotline_menu"
    skill: str = ANY_SKILL
    # Callers on this line ask for agents who speak it (a tag: zh-CN, yue, en); None: anyone.
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    # The least agent level that may take this line's calls (trainee < supervised < agent); None: any.
    min_level: Literal["trainee", "supervised", "agent"] | None = None
    after_hours_flow: str | None = "after_hours"
    callback_campaign: str = Field(default="hotline-callbacks", min_length=1, max_length=64)
    queue_timeout: float = Field(default=180.0, gt=0, le=3600)
    ring_timeout: int = Field(default=20, ge=5, le=120)
    announce_every: float = Field(default=30.0, ge=5, le=600)
    hours: dict[str, list[str]] = Field(default_factory=lambda: {"daily": ["00:00-23:59"]})
    closed_dates: list[date] = Field(default_factory=list)
    service_level: ServiceLevel = Field(default_factory=ServiceLevel)
    # A line where speed must never be the target (the elder line): staffed so that agents are busy
    # at most this share of the time, with no answer-time target. None: by service level.
    max_occupancy: float | None = Field(default=None, gt=0, le=1)
    # After the agent hangs up, the caller is asked to rate the call 1-5 (ivr.survey).
    survey: bool = False
    # ... and may then leave a recorded comment of at most this many seconds; None: no comment.
    survey_comment_seconds: int | None = Field(default=None, ge=5, le=120)
    # What the agent reads and fills in on this line's calls (see docs/campaigns.md).
    script: str | None = None
    form: Form | None = None
    # Outside numbers agents may transfer this line's calls to, by name (docs/transfers.md).
    transfer_numbers: dict[str, str] = Field(default_factory=dict)

    @field_validator("transfer_numbers")
    @classmethod
    def _transfer_numbers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, number in v.items():
            if not name.strip() or len(name) > 64:
                raise ValueError(_("a name of 1-64 characters for each number ('{name}')", name=name))
            if line_number(str(number)) is None:
                raise ValueError(_("'{number}' ({name}) is not a phone number", number=number, name=name))
        return v

    @field_validator("script")
    @classmethod
    def _script(cls, v: str | None) -> str | None:
        return check_script(v) if v and v.strip() else None

    @field_validator("form")
    @classmethod
    def _form(cls, v: Form | None) -> Form | None:
        if v is not None and v.record != "case":
            raise ValueError("record: " + _("an inbound line's form is kept as a case record (record: case)"))
        return v

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, spans in value.items():
            _day_keys(key)
            for span in spans:
                _span(span)
        return value

    def spans(self, day: str) -> list[tuple[time, time]]:
        out: list[tuple[time, time]] = []
        for key, spans in self.hours.items():
            if day in _day_keys(key):
                out.extend(_span(s) for s in spans)
        return out

    def line_names(self, number: str) -> tuple[str, ...]:
        """The names an agent's profile may give this line by: its name, then the number."""
        return tuple(dict.fromkeys(n for n in (self.name, number) if n and n != "default"))


class InboundConfig(BaseModel):
    timezone: str = "Asia/Shanghai"
    numbers: dict[str, InboundNumber] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    def for_number(self, number: str) -> InboundNumber | None:
        return self.numbers.get(number) or self.numbers.get("default")


class InboundConfigError(ValueError):
    """The inbound file does not validate: one line per problem, each saying where."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: " + _("invalid inbound settings:") + "\n  " + "\n  ".join(problems))


def load_config(path: Path) -> InboundConfig:
    """Read the inbound configuration; a missing file means no numbers (every call: default).
    A line's `script_file` (beside the file) is read into its `script`."""
    if not path.exists():
        return InboundConfig()
    try:
        located = load_located(path.read_text(encoding="utf-8-sig"))
    except LocatedYamlError as exc:
        if exc.mark:
            problem = _("line {line}: not valid YAML ({problem})", line=exc.mark.line, problem=exc.problem)
        else:
            problem = _("not valid YAML ({problem})", problem=exc.problem)
        raise InboundConfigError(path, [problem]) from exc
    raw = located.data or {}
    lines = located.lines()
    if not isinstance(raw, dict):
        raise InboundConfigError(path, [_("the file must be a mapping (timezone:, numbers:)")])
    numbers = {str(k): dict(v) if isinstance(v, dict) else v for k, v in (raw.get("numbers") or {}).items()}
    for key, line in numbers.items():
        if isinstance(line, dict) and "script_file" in line:
            line["script"] = _script_file(path, key, line.pop("script_file"), lines)
    try:
        return InboundConfig.model_validate({**raw, "numbers": numbers})
    except ValidationError as exc:
        raise InboundConfigError(path, validation_problems(exc.errors(), lines)) from exc


def _script_file(path: Path, key: str, ref: object, lines: dict[tuple[str, ...], int]) -> str:
    line = lines.get(("numbers", key, "script_file"))
    file = path.parent / str(ref)
    try:
        return file.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        problem = where_text(line, f"numbers.{key}.script_file", _("no such file {path}", path=file))
        raise InboundConfigError(path, [problem]) from None


def is_open(cfg: InboundNumber, now: datetime, tz: str) -> bool:
    """Whether the hotline answers with agents at ``now`` (local time in ``tz``)."""
    local = now.astimezone(ZoneInfo(tz))
    if local.date() in cfg.closed_dates:
        return False
    moment = local.time().replace(tzinfo=None)
    return any(start <= moment < end for start, end in cfg.spans(DAYS[local.weekday()]))
