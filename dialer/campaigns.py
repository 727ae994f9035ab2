"""Campaigns: their settings (validated, from YAML, the API or defaults) and their life cycle.

A campaign is created as a draft, started (running), paused and resumed, and finished for good.
Settings are a `CampaignSpec`; a YAML file holds the same keys (see config/campaigns/). Every
error says which setting is wrong and, for a file, on which line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.profiles import ProfileError, clean_languages, clean_skills
from core.audit import audit
from core.auth.models import ROLE_NAMES, Role
from core.db import utcnow
from core.errors import CodedError
from core.i18n import N_, _
from core.located_yaml import LocatedYamlError, load_located
from core.validation import error_message, where_text
from dialer.dispositions import Disposition, check_dispositions
from dialer.forms import Form
from dialer.models import (
    AGENT_MODES,
    Campaign,
    CampaignKind,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactState,
    ListImport,
)
from dialer.schedule import DAYS, OUTCOMES, RetryRule, format_window, parse_day_windows, parse_minutes
from dialer.scripts import check_script, placeholders, pop_fields

NAME_RE = re.compile(r"^\w[\w.\-]{0,63}$")
DEFAULT_TIMEZONE = "Asia/Shanghai"

# Every day but gentler at weekends: people are called at home.
DEFAULT_WINDOWS: dict[str, list[str]] = {
    **{d: ["09:00-12:00", "13:30-20:00"] for d in DAYS[:5]},
    "sat": ["10:00-12:00", "14:00-18:00"],
    "sun": ["10:00-12:00", "14:00-18:00"],
}
# Elder welfare: mid-morning and mid-afternoon only, clear of meals (11:30-13:00, from 17:30)
# and the after-lunch nap, and well before dark.
ELDER_WINDOWS: dict[str, list[str]] = {d: ["09:00-11:30", "14:30-17:00"] for d in DAYS}

DEFAULT_RETRY: dict[str, dict[str, float | int | None]] = {
    "busy": {"delay_minutes": 10, "growth": 1.5, "max_attempts": 3},
    "no_answer": {"delay_minutes": 60, "growth": 2.0, "max_attempts": 3, "max_delay_minutes": 24 * 60},
    "machine": {"delay_minutes": 120, "growth": 1.0, "max_attempts": 2},
    "failed": {"delay_minutes": 30, "growth": 2.0, "max_attempts": 2},
    "abandoned": {"delay_minutes": 5, "growth": 1.0, "max_attempts": 2},
    "no_input": {"delay_minutes": 60, "growth": 1.0, "max_attempts": 2},
    "callback": {"delay_minutes": 30, "growth": 1.0, "max_attempts": 3},
    # An agent's "retry later" disposition (follow-up needed, voicemail): try again in two hours.
    "retry_later": {"delay_minutes": 120, "growth": 1.0, "max_attempts": 3},
}
DEFAULT_CALLBACK_GRACE_MINUTES = 30.0

MODE_TEXT = {
    "broadcast": N_("broadcast (the dialer dials)"),
    "preview": N_("preview (agents pull contacts and place the calls)"),
    "progressive": N_("progressive (one call for each free agent)"),
    "predictive": N_("predictive (the pacer dials ahead for agents, under the abandon cap)"),
}

_DAY_ALIASES: dict[str, tuple[str, ...]] = {
    "daily": DAYS,
    "all": DAYS,
    "every_day": DAYS,
    "everyday": DAYS,
    "weekdays": DAYS[:5],
    "weekend": DAYS[5:],
    "weekends": DAYS[5:],
}

_TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.draft: frozenset({CampaignStatus.running, CampaignStatus.finished}),
    CampaignStatus.running: frozenset({CampaignStatus.paused, CampaignStatus.finished}),
    CampaignStatus.paused: frozenset({CampaignStatus.running, CampaignStatus.finished}),
    CampaignStatus.finished: frozenset(),
}


class CampaignError(CodedError):
    """A campaign request that cannot be carried out, with a message for a person (in the current
    locale) and a stable code for programs."""

    code = "campaign_refused"


class StatusNotYours(CampaignError):
    """The change is allowed for the campaign, not for this person's role (docs/security-roles.md)."""


# What a supervisor may do to a campaign's status: hold a running one, and let it go on again.
# Starting a draft (its list, script and schedule not yet checked by a manager) and finishing one
# are a manager's decisions.
SUPERVISOR_CHANGES: frozenset[tuple[CampaignStatus, CampaignStatus]] = frozenset(
    {
        (CampaignStatus.running, CampaignStatus.paused),
        (CampaignStatus.paused, CampaignStatus.running),
    }
)


def may_change_status(role: Role, current: CampaignStatus, target: CampaignStatus) -> bool:
    """Managers and administrators make every change the campaign allows; supervisors pause and resume."""
    if role in (Role.manager, Role.admin):
        return True
    return role is Role.supervisor and (current, target) in SUPERVISOR_CHANGES


def check_status_right(role: Role, campaign: Campaign, target: CampaignStatus) -> None:
    if target != campaign.status and not may_change_status(role, campaign.status, target):
        raise StatusNotYours(
            _(
                "a {role} may pause a running campaign and resume a paused one; only a manager may"
                " make campaign {name} {status}",
                role=_(ROLE_NAMES[role]),
                name=campaign.name,
                status=target.value,
            )
        )


class SpecError(CampaignError):
    """Campaign settings that do not validate: one line per problem, each saying where."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + _("invalid campaign settings:") + "\n  " + "\n  ".join(problems))


class Retention(BaseModel):
    """How long the campaign's personal data is kept, and why (PIPL: a purpose for every keeping).
    The service purges recordings past `recordings_days` itself (recordings.retention)."""

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(min_length=2, max_length=200, description="why the data is kept, for the record")
    recordings_days: int = Field(ge=1, le=3650, description="days a call recording is kept after the call")


# Said to the callee (campaign content, like an IVR flow's text: in Chinese, not the catalogue's).
DEFAULT_APOLOGY = (
    "您好，很抱歉，我们的工作人员此刻都在忙，没能接听您的电话。如需联系我们，请回拨 {callback}。"
    "我们稍后会再打给您。再见。"
)


class PacingSpec(BaseModel):
    """How a progressive or predictive campaign is paced: the hard abandon cap and the 2-second
    rule (docs/pacing.md)."""

    model_config = ConfigDict(extra="forbid")

    abandon_limit: float = Field(
        default=0.03, gt=0, le=0.2, description="share of live answers that may find no agent (0.03 = 3%)"
    )
    window_hours: float = Field(
        default=24.0, ge=1, le=720, description="the window the limit holds over (24 h; 720 = 30 days)"
    )
    grace_seconds: float = Field(
        default=1.2,
        ge=0.2,
        le=2.0,
        description="seconds after AMD's verdict a live answer waits for an agent before the apology"
        " (AMD's 0.8 s of silence after the greeting is already gone: 1.2 s keeps the 2-second rule)",
    )
    apology: str = Field(
        default=DEFAULT_APOLOGY,
        min_length=4,
        max_length=300,
        description="what a callee hears when no agent is free within the grace; {callback} is the"
        " caller ID's number, said digit by digit",
    )
    policy: Literal["predictive", "adapt"] = Field(
        default="predictive", description="the predictive mode's pacer (adapt: VICIdial's ADAPT_TAPERED)"
    )


class CampaignSpec(BaseModel):
    """Everything a campaign is configured with. Unknown keys are errors (a typo is not ignored)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = Field(default=None, max_length=500)
    kind: CampaignKind = CampaignKind.agent
    mode: CampaignMode = Field(
        default=CampaignMode.broadcast,
        description="broadcast (the dialer dials), preview (agents pull contacts and place the calls),"
        " progressive or predictive (the dialer dials for agents, as many calls as the pacer says)",
    )
    manual_dial: bool = Field(
        default=False, description="agents with the manual-dial permission may dial a typed number"
    )
    skill: str | None = Field(default=None, description="the skill an agent needs for this campaign's calls")
    language: str | None = Field(default=None, description="the language an agent must speak for them")
    min_level: Literal["trainee", "supervised", "agent"] | None = Field(
        default=None, description="the least agent level (trainee < supervised < agent) that takes its calls"
    )
    flow: str | None = Field(default=None, description="the IVR flow a broadcast plays (or agents' pre-flow)")
    survey: bool = Field(
        default=False,
        description="after the agent hangs up, the callee is asked to rate the call 1-5 (as on an inbound line)",
    )
    survey_comment_seconds: int | None = Field(
        default=None,
        ge=5,
        le=120,
        description="with the survey: the callee may then leave a recorded comment this long at most",
    )
    elder_welfare: bool = False
    timezone: str = DEFAULT_TIMEZONE
    windows: dict[str, list[str]] = Field(default_factory=dict)
    start_date: date | None = None
    end_date: date | None = None
    skip_dates: list[date] = Field(default_factory=list)
    caller_id: str | None = None
    retry: dict[str, RetryRule] = Field(default_factory=dict)
    max_attempts: int = Field(default=6, ge=1, le=50, description="attempts per contact, all outcomes")
    daily_cap: int = Field(default=3, ge=1, le=50, description="attempts per contact per calendar day")
    rolling_cap: int = Field(default=3, ge=1, le=50, description="attempts per contact in any 24 hours")
    priority: int = Field(default=5, ge=1, le=10, description="10 is dialled first")
    amd: Literal["leave_message", "retry"] | None = None
    max_channels: int = Field(default=10, ge=1, le=2000)
    calls_per_second: float = Field(default=2.0, gt=0, le=200)
    allowed_countries: list[str] = Field(default_factory=lambda: ["CN"])
    dispositions: list[Disposition] = Field(
        default_factory=list, description="the agents' wrap-up choices, key 1 first (none: the defaults)"
    )
    transfer_numbers: dict[str, str] = Field(
        default_factory=dict,
        description="outside numbers agents may transfer a call to, by name (e.g. 社区卫生服务中心: 010-…);"
        " checked against do-not-call and the calling window when dialled",
    )
    callback_grace_minutes: float = Field(
        default=DEFAULT_CALLBACK_GRACE_MINUTES,
        gt=0,
        le=7 * 24 * 60,
        validation_alias=AliasChoices("callback_grace_minutes", "callback_grace"),
        description="how long a callback waits for the agent who promised it before anyone may take it",
    )

    script: str | None = Field(
        default=None,
        description="the agents' call script (Markdown, {field} placeholders); a file: script_file",
    )
    form: Form | None = Field(default=None, description="the questions agents answer about a call")
    screen_pop: list[str] | None = Field(
        default=None,
        max_length=20,
        description="the list columns the screen pop shows (None: those the script uses)",
    )
    retention: Retention | None = Field(
        default=None,
        description="how long recordings are kept and for what purpose (None: the service's default)",
    )
    pacing: PacingSpec = Field(
        default_factory=PacingSpec,
        description="progressive and predictive modes: the abandon limit, its window, the grace, the apology",
    )
    nailed: bool | None = Field(
        default=None,
        description="progressive and predictive modes: keep the campaign's free agents on the line"
        " (nailed up, no ring between calls); false: ring them for each call. Default: true, false"
        " for a campaign with the survey (a nailed call's callee leaves with the agent)",
    )

    _grace = field_validator("callback_grace_minutes", mode="before")(parse_minutes)

    @field_validator("script")
    @classmethod
    def _script(cls, v: str | None) -> str | None:
        return check_script(v) if v and v.strip() else None

    def pop_fields(self) -> list[str]:
        """The list columns that go with a call to the agent's screen: those `screen_pop` names and
        those the script uses -- never all of them."""
        return pop_fields(self.script, self.screen_pop)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                _("1-64 letters, digits, '_', '.', '-' (no spaces), starting with a letter or digit")
            )
        if v.isdigit() or re.fullmatch(r"\+?[\d\s().\-]{7,}", v):
            raise ValueError(_("a name must not look like a phone number (add a word, e.g. flu-2024-11-20)"))
        return v

    @field_validator("flow")
    @classmethod
    def _flow(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.match(v):
            raise ValueError(_("a flow name: letters, digits, '_', '.', '-'"))
        return v

    @field_validator("skill")
    @classmethod
    def _skill(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            return clean_skills([v])[0]
        except ProfileError as exc:
            raise ValueError(exc.problem) from None

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            return clean_languages([v])[0]
        except ProfileError as exc:
            raise ValueError(exc.problem) from None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                _("unknown time zone '{zone}' (IANA names, e.g. Asia/Shanghai)", zone=v)
            ) from None
        return v

    @field_validator("windows", mode="before")
    @classmethod
    def _windows(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError(
                "windows: " + _("a mapping of days to lists like ['09:00-11:30', '14:30-17:00']")
            )
        out: dict[str, list[str]] = {}
        for key, value in v.items():
            days = _days(str(key))
            texts = [value] if isinstance(value, str) else list(value or [])
            if not all(isinstance(t, str) for t in texts):
                raise ValueError(f"{key}: " + _("write windows as text, e.g. '09:00-11:30'"))
            try:
                normal = [format_window(w) for w in parse_day_windows(texts)]
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
            for d in days:
                out[d] = normal
        return out

    @field_validator("retry", mode="before")
    @classmethod
    def _retry(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError("retry: " + _("a mapping of outcomes to rules"))
        unknown = [k for k in v if k not in OUTCOMES]
        if unknown:
            raise ValueError(
                _(
                    "unknown outcome '{outcome}' (outcomes: {outcomes})",
                    outcome=unknown[0],
                    outcomes=", ".join(OUTCOMES),
                )
            )
        merged: dict[str, Any] = {}
        for outcome, rule in v.items():
            if isinstance(rule, RetryRule):
                merged[outcome] = rule
                continue
            if not isinstance(rule, Mapping):
                raise ValueError(
                    f"{outcome}: "
                    + _("a rule like {example}", example="{delay: 10m, growth: 1.5, max_attempts: 3}")
                )
            base = dict(DEFAULT_RETRY[outcome])
            for short, full in (("delay", "delay_minutes"), ("max_delay", "max_delay_minutes")):
                if short in rule:
                    base.pop(full, None)
            merged[outcome] = {**base, **rule}
        return merged

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\+?\d{3,20}", v.replace(" ", "").replace("-", "")):
            raise ValueError(_("digits, optionally starting with + (e.g. 12345 or +861012345678)"))
        return v.replace(" ", "").replace("-", "") if v else v

    @field_validator("allowed_countries")
    @classmethod
    def _countries(cls, v: list[str]) -> list[str]:
        out = []
        for code in v:
            c = code.strip().upper()
            if c not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(_("'{code}' is not a region code (two letters, e.g. CN, HK, US)", code=code))
            out.append(c)
        if not out:
            raise ValueError(_("at least one country, e.g. [CN]"))
        return sorted(set(out))

    @model_validator(mode="after")
    def _whole(self) -> CampaignSpec:
        if not self.windows:
            self.windows = dict(ELDER_WINDOWS if self.elder_welfare else DEFAULT_WINDOWS)
        else:
            self.windows = {d: self.windows.get(d, []) for d in DAYS}
        if not any(self.windows.values()):
            raise ValueError("windows: " + _("no calling window on any day; the campaign could never call"))
        self.retry = {o: self.retry.get(o) or RetryRule.model_validate(DEFAULT_RETRY[o]) for o in OUTCOMES}
        if self.amd is None:
            self.amd = "leave_message" if self.kind is CampaignKind.broadcast else "retry"
        if self.kind is CampaignKind.broadcast and not self.flow:
            raise ValueError("flow: " + _("a broadcast campaign needs the IVR flow it plays (flow: NAME)"))
        self._check_mode()
        if self.nailed is None:
            self.nailed = not self.survey
        elif self.nailed and self.survey:
            # the agent's hang-up on a nailed line ends the callee's side too: no one would be surveyed
            raise ValueError(
                "nailed: "
                + _(
                    "a campaign with the survey rings its agents (nailed: false):"
                    " a nailed call's callee leaves with the agent, before the survey"
                )
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(
                "end_date: "
                + _("{end} is before start_date {start}", end=self.end_date, start=self.start_date)
            )
        self.skip_dates = sorted(set(self.skip_dates))
        try:
            self.dispositions = check_dispositions(self.dispositions)
        except ValueError as exc:
            raise ValueError(f"dispositions: {exc}") from None
        return self

    def _check_mode(self) -> None:
        """Agents' modes and manual dial need agents to talk to the callees."""
        if self.mode in AGENT_MODES and self.kind is CampaignKind.broadcast:
            raise ValueError(
                "mode: "
                + _(
                    "a {mode} campaign connects its calls to agents; it needs kind: agent",
                    mode=self.mode.value,
                )
            )
        if self.mode is CampaignMode.preview and self.flow:
            raise ValueError(
                "flow: "
                + _("a preview campaign's calls go straight to the agent who placed them; it plays no flow")
            )
        if self.manual_dial and self.kind is CampaignKind.broadcast:
            raise ValueError(
                "manual_dial: " + _("agents place calls only in an agent campaign (kind: agent)")
            )

    def public(self) -> dict[str, Any]:
        """The settings as plain JSON-able data (the same keys a YAML file uses)."""
        return self.model_dump(mode="json")


def _days(key: str) -> tuple[str, ...]:
    k = key.strip().lower()
    if k in _DAY_ALIASES:
        return _DAY_ALIASES[k]
    if k in DAYS:
        return (k,)
    m = re.fullmatch(r"([a-z]{3})\s*-\s*([a-z]{3})", k)
    if m and m.group(1) in DAYS and m.group(2) in DAYS:
        a, b = DAYS.index(m.group(1)), DAYS.index(m.group(2))
        if a <= b:
            return DAYS[a : b + 1]
    raise ValueError(
        _("'{key}' is not a day: mon … sun, a range like mon-fri, or daily/weekdays/weekend", key=key)
    )


# --- validation with locations ------------------------------------------------------------------


def _loc_text(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc if p not in ("function-after[_whole()]",)) or "(campaign)"


def problems_of(exc: ValidationError, lines: Mapping[tuple[str, ...], int] | None = None) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        msg = error_message(err)
        head, sep, rest = msg.partition(": ")
        named_field = not loc and head in CampaignSpec.model_fields
        # A message may start with the (dotted) key it is about: `questions.3.show_if: …`.
        named_key = bool(loc and lines and (*loc, *head.split(".")) in lines)
        if sep and " " not in head and (named_field or named_key):
            loc, msg = (*loc, *head.split(".")), rest
        if err["type"] == "extra_forbidden":
            msg = _("unknown setting (settings: {names})", names=", ".join(CampaignSpec.model_fields))
        where = _loc_text(loc)
        line = _line_for(loc, lines) if lines else None
        out.append(where_text(line, where, msg))
    return out


def _line_for(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def build_spec(
    data: Mapping[str, Any], *, source: str | None = None, lines: Mapping[Any, int] | None = None
) -> CampaignSpec:
    try:
        return CampaignSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise SpecError(problems_of(exc, lines), source) from exc


def read_settings(text: str, source: str | None = None) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The settings a YAML text holds, with the line of each key (for error messages).

    Raises SpecError when the text is not YAML, not a mapping, or sets a key twice (the later
    value would silently win)."""
    try:
        located = load_located(text)
    except LocatedYamlError as exc:
        if exc.mark:
            problem = _(
                "line {line}, column {column}: not valid YAML ({problem})",
                line=exc.mark.line,
                column=exc.mark.column,
                problem=exc.problem,
            )
        else:
            problem = _("not valid YAML ({problem})", problem=exc.problem)
        raise SpecError([problem], source) from exc
    data = {} if located.data is None else located.data
    if not isinstance(data, dict):
        raise SpecError([_("the file must be a mapping of settings (key: value lines)")], source)
    if located.duplicates:
        raise SpecError(
            [where_text(m.line, _loc_text(path), _("set twice; keep one")) for path, m in located.duplicates],
            source,
        )
    return data, located.lines()


def load_spec_text(text: str, name: str, source: str = "<text>", base: Path | None = None) -> CampaignSpec:
    """A spec from YAML text; the campaign is called `name` whatever the file says (a file can be a
    template for several campaigns). `base`: the folder a `script_file` is relative to."""
    data, lines = read_settings(text, source)
    data = with_script_file(data, lines, base, source)
    return build_spec({**data, "name": name}, source=source, lines=lines)


def with_script_file(
    data: dict[str, Any], lines: Mapping[tuple[str, ...], int], base: Path | None, source: str | None
) -> dict[str, Any]:
    """`script_file: NAME.md` (beside the YAML file) read into `script`."""
    if "script_file" not in data:
        return data
    data = dict(data)
    ref = data.pop("script_file")
    line = lines.get(("script_file",))
    if "script" in data:
        raise SpecError(
            [where_text(line, "script_file", _("give the script or a script file, not both"))], source
        )
    if base is None or not isinstance(ref, str) or not ref.strip():
        raise SpecError(
            [
                where_text(
                    line, "script_file", _("a file name beside the settings file (e.g. welfare.script.md)")
                )
            ],
            source,
        )
    path = (base / ref).resolve()
    try:
        data["script"] = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        raise SpecError(
            [where_text(line, "script_file", _("no such file {path}", path=path))], source
        ) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            [
                where_text(
                    line,
                    "script_file",
                    _("{path} is not UTF-8 text (byte {byte})", path=path, byte=exc.start + 1),
                )
            ],
            source,
        ) from exc
    return data


def read_settings_file(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """A YAML settings file's keys and their lines, with its `script_file` read into `script`."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError([_("no such file")], str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError([_("not UTF-8 text (byte {byte})", byte=exc.start + 1)], str(path)) from exc
    data, lines = read_settings(text, str(path))
    return with_script_file(data, lines, path.parent, str(path)), lines


def load_spec_file(path: Path, name: str) -> CampaignSpec:
    data, lines = read_settings_file(path)
    return build_spec({**data, "name": name}, source=str(path), lines=lines)


# --- the campaign table ---------------------------------------------------------------------------

_COLUMNS = (
    "description", "kind", "flow", "elder_welfare", "timezone", "windows", "start_date", "end_date",
    "caller_id", "max_attempts", "daily_cap", "rolling_cap", "priority", "amd", "max_channels",
    "calls_per_second", "allowed_countries", "callback_grace_minutes", "mode", "manual_dial", "skill",
    "language", "script", "screen_pop", "min_level", "survey",
    "survey_comment_seconds",
)  # fmt: skip


def spec_of(campaign: Campaign) -> CampaignSpec:
    data: dict[str, Any] = {c: getattr(campaign, c) for c in _COLUMNS}
    data["name"] = campaign.name
    data["skip_dates"] = campaign.skip_dates or []
    data["retry"] = campaign.retry or {}
    data["dispositions"] = campaign.dispositions or []  # none stored (before 0900): the defaults
    data["form"] = campaign.form or None
    data["transfer_numbers"] = campaign.transfer_numbers or {}
    data["retention"] = campaign.retention or None
    pacing = dict(campaign.pacing or {})
    data["nailed"] = bool(pacing.pop("nailed", True))  # kept beside the pacing settings (no column)
    data["pacing"] = pacing
    return CampaignSpec.model_validate(data)


def _apply(campaign: Campaign, spec: CampaignSpec) -> None:
    for c in _COLUMNS:
        value = getattr(spec, c)
        setattr(campaign, c, dict(value) if isinstance(value, dict) else value)
    campaign.windows = {d: list(w) for d, w in spec.windows.items()}
    campaign.skip_dates = [d.isoformat() for d in spec.skip_dates]
    campaign.retry = {o: r.model_dump() for o, r in spec.retry.items()}
    campaign.dispositions = [d.model_dump(mode="json") for d in spec.dispositions]
    campaign.form = spec.form.model_dump(mode="json") if spec.form else None
    campaign.transfer_numbers = dict(spec.transfer_numbers) or None
    campaign.screen_pop = list(spec.screen_pop) if spec.screen_pop is not None else None
    campaign.retention = spec.retention.model_dump() if spec.retention else None
    default = PacingSpec()
    pacing = spec.pacing.model_dump() if spec.pacing != default else None
    campaign.pacing = pacing if spec.nailed else {**(pacing or {}), "nailed": False}


def get_campaign(session: Session, name: str) -> Campaign | None:
    return session.scalar(select(Campaign).where(Campaign.name == name))


def require_campaign(session: Session, name: str) -> Campaign:
    campaign = get_campaign(session, name)
    if campaign is None:
        raise CampaignError(_("no campaign named '{name}'", name=name), code="no_such_campaign")
    return campaign


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.priority.desc(), Campaign.name)))


def create_campaign(session: Session, spec: CampaignSpec, *, actor: str) -> Campaign:
    if get_campaign(session, spec.name) is not None:
        raise CampaignError(_("campaign '{name}' already exists", name=spec.name), code="campaign_exists")
    campaign = Campaign(name=spec.name, created_by=actor, status=CampaignStatus.draft)
    _apply(campaign, spec)
    session.add(campaign)
    session.flush()
    audit(session, actor, "campaign.create", spec.name, kind=spec.kind.value)
    return campaign


def update_campaign(
    session: Session,
    name: str,
    changes: Mapping[str, Any],
    *,
    actor: str,
    source: str | None = None,
    lines: Mapping[Any, int] | None = None,
) -> Campaign:
    """Change some settings; the result is validated as a whole. A finished campaign is frozen."""
    campaign = require_campaign(session, name)
    if campaign.status is CampaignStatus.finished:
        raise CampaignError(_("campaign '{name}' is finished; its settings can no longer change", name=name))
    if "name" in changes and changes["name"] != name:
        raise CampaignError(_("a campaign cannot be renamed"))
    current = spec_of(campaign).public()
    old_default = ELDER_WINDOWS if campaign.elder_welfare else DEFAULT_WINDOWS
    if "elder_welfare" in changes and "windows" not in changes and current["windows"] == old_default:
        current.pop("windows")  # windows that were the default follow the new default
    merged = {**current, **dict(changes), "name": name}
    spec = build_spec(merged, source=source, lines=lines)
    _apply(campaign, spec)
    changed = sorted(k for k, v in spec.public().items() if current.get(k) != v)
    campaign.updated_at = utcnow()
    audit(session, actor, "campaign.update", name, changed=changed)
    return campaign


def set_status(
    session: Session, name: str, status: CampaignStatus, *, actor: str, role: Role = Role.admin
) -> Campaign:
    """Change the status as `actor` (in `role`: the command line acts as an administrator)."""
    campaign = require_campaign(session, name)
    check_status_right(role, campaign, status)
    if status == campaign.status:
        return campaign
    if status not in _TRANSITIONS[campaign.status]:
        allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[campaign.status])) or _(
            "none: it is finished"
        )
        raise CampaignError(
            _("campaign '{name}' is {status}; it cannot become {wanted} (next: {allowed})", name=name,
              status=campaign.status.value, wanted=status.value, allowed=allowed),
        )  # fmt: skip
    if status is CampaignStatus.running:
        spec = spec_of(campaign)
        today = utcnow().astimezone(ZoneInfo(spec.timezone)).date()
        if spec.end_date and spec.end_date < today:
            raise CampaignError(
                _(
                    "campaign '{name}' ended on {end}; change end_date to run it again",
                    name=name,
                    end=spec.end_date,
                ),
            )
    before = campaign.status
    campaign.status = status
    campaign.status_changed_at = utcnow()
    audit(session, actor, f"campaign.{status.value}", name, before=before.value)
    return campaign


def contact_counts(session: Session, campaign_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
    stmt = select(Contact.campaign_id, Contact.state, func.count()).group_by(
        Contact.campaign_id, Contact.state
    )
    if campaign_ids is not None:
        stmt = stmt.where(Contact.campaign_id.in_(campaign_ids))
    out: dict[int, dict[str, int]] = {}
    for cid, state, n in session.execute(stmt):
        out.setdefault(cid, {s.value: 0 for s in ContactState})[state.value] = n
    return out


def recent_imports(session: Session, campaign: Campaign, limit: int = 20) -> list[ListImport]:
    stmt = (
        select(ListImport)
        .where(ListImport.campaign_id == campaign.id)
        .order_by(ListImport.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def describe(session: Session, campaign: Campaign) -> dict[str, Any]:
    """What `campaign show` and the API print: settings, status, counts, recent imports."""
    counts = contact_counts(session, [campaign.id]).get(campaign.id, {s.value: 0 for s in ContactState})
    return {
        **spec_of(campaign).public(),
        "status": campaign.status.value,
        "created_at": campaign.created_at.isoformat(),
        "created_by": campaign.created_by,
        "updated_at": campaign.updated_at.isoformat(),
        "contacts": {"total": sum(counts.values()), **counts},
        "imports": [import_summary(i) for i in recent_imports(session, campaign, 10)],
    }


def import_summary(job: ListImport) -> dict[str, Any]:
    return {
        "id": job.id,
        "file": job.file_name,
        "status": job.status.value,
        "rows": job.rows,
        "accepted": job.accepted,
        "rejected": job.rejected,
        "skipped": job.skipped,
        "reasons": job.reasons,
        "by": job.created_by,
        "at": job.started_at.isoformat(),
        "error": job.error,
    }


def describe_text(info: Mapping[str, Any]) -> str:
    """`campaign show` for a terminal."""
    lines = [
        f"{info['name']} ({info['kind']}{', elder welfare' if info['elder_welfare'] else ''}): {info['status']}",
        "  mode: "
        + _(MODE_TEXT[info["mode"]])
        + ("; " + _("agents may dial typed numbers") if info["manual_dial"] else ""),
    ]
    if info.get("skill") or info.get("language"):
        needs = [
            _("skill {skill}", skill=info["skill"]) if info.get("skill") else "",
            _("speaks {language}", language=info["language"]) if info.get("language") else "",
        ]
        lines.append(f"  agents: {', '.join(n for n in needs if n)}")
    if info.get("description"):
        lines.append(f"  {info['description']}")
    if info.get("flow"):
        lines.append(f"  flow: {info['flow']}")
    lines.append(
        f"  time zone: {info['timezone']}; priority {info['priority']}; caller ID {info['caller_id'] or '-'}"
    )
    dates = f"{info['start_date'] or 'now'} to {info['end_date'] or 'open-ended'}"
    lines.append(
        f"  dates: {dates}" + (f"; skipping {', '.join(info['skip_dates'])}" if info["skip_dates"] else "")
    )
    lines.append("  windows:")
    for day in DAYS:
        lines.append(f"    {day}: {', '.join(info['windows'][day]) or 'no calls'}")
    lines.append(
        f"  attempts: at most {info['max_attempts']} per contact, {info['daily_cap']} a day,"
        f" {info['rolling_cap']} in any 24 h; answering machine: {info['amd']}"
    )
    lines.append("  retry:")
    for outcome, rule in info["retry"].items():
        growth = f" ×{rule['growth']:g} each time" if rule["growth"] != 1 else ""
        cap = f", at most {rule['max_delay_minutes']:g} min" if rule.get("max_delay_minutes") else ""
        lines.append(
            f"    {outcome}: after {rule['delay_minutes']:g} min{growth}{cap}; up to {rule['max_attempts']} attempts"
        )
    lines.append(f"  pacing: {info['max_channels']} channels, {info['calls_per_second']:g} calls/s")
    if info["mode"] in ("progressive", "predictive") and info.get("pacing"):
        p = info["pacing"]
        lines.append(
            "    "
            + _(
                "abandon cap {limit}% of live answers over {hours} h; an agent within {grace} s of AMD's"
                " verdict, else the apology",
                limit=format(100 * p["abandon_limit"], "g"),
                hours=format(p["window_hours"], "g"),
                grace=format(p["grace_seconds"], "g"),
            )
        )
    lines.append(f"  wrap-up (callbacks stay with their agent {info['callback_grace_minutes']:g} min):")
    for key, d in enumerate(info["dispositions"], start=1):
        english = f" ({d['label_en']})" if d["label_en"] else ""
        lines.append(f"    {key} {d['code']}: {d['label']}{english} → {d['action']}")
    if info.get("script"):
        used = ", ".join(placeholders(info["script"])) or "none"
        lines.append(f"  script: {len(info['script'])} characters (fields: {used})")
    if info.get("form"):
        form = info["form"]
        keys = ", ".join(q["key"] for q in form["questions"])
        lines.append(
            f"  form: {form.get('title') or '(untitled)'}: {len(form['questions'])} questions ({keys})"
        )
    lines.append(f"  countries: {', '.join(info['allowed_countries'])}")
    if info.get("retention"):
        kept = info["retention"]
        lines.append(
            "  "
            + _(
                "recordings kept {days} days, for: {purpose}",
                days=kept["recordings_days"],
                purpose=kept["purpose"],
            )
        )
    c = info["contacts"]
    lines.append("  contacts: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    for imp in info["imports"]:
        lines.append(
            f"  import #{imp['id']} {imp['file']}: {imp['status']}, {imp['accepted']} accepted,"
            f" {imp['rejected']} rejected, {imp['skipped']} skipped ({imp['at'][:16]} by {imp['by']})"
        )
    return "\n".join(lines)
