"""Bus message schemas: the one module shared by the server and the agents' softphones.

The softphone runs on another PC and may be a release behind or ahead of the server, so:

- every message carries `v` (schema version) and `at` (UTC time it was made);
- unknown fields are ignored when reading, so a newer sender does not break an older reader;
- timestamps must carry a timezone and are stored as UTC.

Each message class knows where it lives on the bus. A class has a `topic_template` relative to the
installation's topic prefix (`agents/{agent}/state`) and a `retained` flag. Topics are addressed as:

- `msg.path` — the concrete path relative to the prefix (`agents/1001/state`);
- `msg.topic(prefix)` — the full MQTT topic (`warmline/agents/1001/state`);
- `Cls.path_for(**keys)` / `Cls.topic_for(prefix, **keys)` — the same without an instance;
- `Cls.pattern(**keys)` — a subscription filter with `+` for every key not given.

Phone numbers are personal data and never appear in a topic: every value that goes into a topic is
checked to be a plain MQTT topic level and to not look like a phone number.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
DEFAULT_PREFIX = "warmline"

_FORBIDDEN_IN_LEVEL = re.compile(r"[/+#\x00]")
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-]{7,}")
_MAX_LEVEL_LENGTH = 128


def check_topic_level(value: str) -> str:
    """Return `value` if it can be one level of a topic; raise ValueError saying why not."""
    if not value:
        raise ValueError("a topic level must not be empty")
    if len(value) > _MAX_LEVEL_LENGTH:
        raise ValueError(f"a topic level must be at most {_MAX_LEVEL_LENGTH} characters")
    if _PHONE_LIKE.fullmatch(value):
        raise ValueError("a topic level must not be a phone number (personal data)")
    if _FORBIDDEN_IN_LEVEL.search(value):
        raise ValueError("a topic level must not contain '/', '+', '#' or NUL")
    return value


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it is a usable topic prefix (one or more plain levels)."""
    for level in prefix.split("/"):
        check_topic_level(level)
    return prefix


def join_topic(prefix: str, path: str) -> str:
    """The full topic for `path` under `prefix`."""
    return f"{prefix}/{path}"


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


TopicLevel = Annotated[str, AfterValidator(check_topic_level)]
"""A string that becomes one level of a topic (agent id, component, call id, campaign name)."""

UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC."""


class BusMessage(BaseModel):
    """Base of every bus message. Subclasses set `topic_template` and `retained`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic_template: ClassVar[str] = ""
    retained: ClassVar[bool] = False

    v: int = SCHEMA_VERSION
    at: UTCDatetime = Field(default_factory=utc_now)

    @classmethod
    def topic_keys(cls) -> tuple[str, ...]:
        """Names of the fields that appear in this message's topic, in order."""
        return tuple(name for _, name, _, _ in string.Formatter().parse(cls.topic_template) if name)

    @classmethod
    def path_for(cls, **keys: str) -> str:
        """The concrete path (relative to the prefix) for the given topic keys, all required."""
        missing = set(cls.topic_keys()) - keys.keys()
        if missing:
            raise ValueError(f"{cls.__name__} topic needs {', '.join(sorted(missing))}")
        return cls.topic_template.format(**{k: check_topic_level(keys[k]) for k in cls.topic_keys()})

    @classmethod
    def topic_for(cls, prefix: str = DEFAULT_PREFIX, **keys: str) -> str:
        """The full topic for the given topic keys."""
        return join_topic(check_prefix(prefix), cls.path_for(**keys))

    @classmethod
    def pattern(cls, **keys: str) -> str:
        """A subscription filter relative to the prefix; keys not given become `+`."""
        unknown = keys.keys() - set(cls.topic_keys())
        if unknown:
            raise ValueError(f"{cls.__name__} topic has no {', '.join(sorted(unknown))}")
        levels = {k: check_topic_level(keys[k]) if k in keys else "+" for k in cls.topic_keys()}
        return cls.topic_template.format(**levels)

    @property
    def path(self) -> str:
        """This message's topic relative to the prefix."""
        return self.path_for(**{k: str(getattr(self, k)) for k in self.topic_keys()})

    def topic(self, prefix: str = DEFAULT_PREFIX) -> str:
        """This message's full topic under `prefix`."""
        return join_topic(check_prefix(prefix), self.path)


AgentStateName = Literal["logged_out", "available", "on_call", "wrap_up", "break"]


class AgentState(BusMessage):
    """An agent's current state. Retained, so a supervisor or a restarted softphone sees it at once."""

    topic_template: ClassVar[str] = "agents/{agent}/state"
    retained: ClassVar[bool] = True

    agent: TopicLevel
    state: AgentStateName
    reason: str | None = None
    since: UTCDatetime


class ServiceHealth(BusMessage):
    """A component's health. Retained; the bus also sets it as the component's last will."""

    topic_template: ClassVar[str] = "health/{component}"
    retained: ClassVar[bool] = True

    component: TopicLevel
    ok: bool
    detail: str | None = None


class CallEvent(BusMessage):
    """Something that happened to a call (originated, answered, amd, bridged, hangup, outcome, ...).

    `call_id` is the attempt's UUID, never a phone number; `detail` must hold masked numbers only.
    `campaign` is None for inbound calls.
    """

    topic_template: ClassVar[str] = "calls/{call_id}"
    retained: ClassVar[bool] = False

    call_id: TopicLevel
    campaign: str | None = None
    kind: str = Field(min_length=1)
    detail: dict[str, Any] = Field(default_factory=dict)


class CampaignStats(BusMessage):
    """Live figures of a campaign for the wallboard (placeholder: names of figures still open)."""

    topic_template: ClassVar[str] = "campaigns/{campaign}/stats"
    retained: ClassVar[bool] = True

    campaign: TopicLevel
    figures: dict[str, int] = Field(default_factory=dict)


class CampaignPacing(BusMessage):
    """A paced (progressive or predictive) campaign's pacer: what it decided last and why, and the
    live figures it watches. `reason` is a code with `params` (rates as fractions), so every reader
    says it in its own language; `reason_text` is the service's default language's sentence."""

    topic_template: ClassVar[str] = "campaigns/{campaign}/pacing"
    retained: ClassVar[bool] = True

    campaign: TopicLevel
    reason: str = Field(min_length=1)
    params: dict[str, float | int | str] = Field(default_factory=dict)
    reason_text: str = ""
    calls: int = Field(default=0, ge=0)
    abandon_rate: float = Field(default=0.0, ge=0, le=1)
    abandon_limit: float = Field(default=0.03, gt=0, le=1)
    window_hours: float = Field(default=24.0, gt=0)
    live_answers: int = Field(default=0, ge=0)
    abandoned: int = Field(default=0, ge=0)
    occupancy: float | None = Field(default=None, ge=0, le=1)
    agent_wait_s: float | None = Field(default=None, ge=0)
    agents_free: int = Field(default=0, ge=0)
    agents_busy: int = Field(default=0, ge=0)
    agents_paused: int = Field(default=0, ge=0)


class CallQuality(BusMessage):
    """A softphone's view of one call's audio, for remote support (retained: the latest per agent).

    `call_ref` is the SIP Call-ID's hash or another opaque id, never a phone number. `mos` is an
    E-model estimate (1.0-4.5); `final` is true for the figures at the end of the call.
    """

    topic_template: ClassVar[str] = "agents/{agent}/quality"
    retained: ClassVar[bool] = True

    agent: TopicLevel
    call_ref: str = Field(min_length=1, max_length=128)
    codec: str = ""
    jitter_ms: float = Field(ge=0)
    loss_pct: float = Field(ge=0, le=100)
    rtt_ms: float = Field(ge=0)
    mos: float = Field(ge=1, le=5)
    final: bool = False


class WelfareAlert(BusMessage):
    """An elder-welfare alert was raised, acknowledged or resolved (supervisors' consoles, pagers).

    `alert_id` is the alert's row id; `phone` is masked (`138****8000`), never the full number.
    """

    topic_template: ClassVar[str] = "alerts/{alert_id}"
    retained: ClassVar[bool] = False

    alert_id: TopicLevel
    kind: str = Field(min_length=1)
    state: Literal["open", "acknowledged", "resolved"]
    campaign: str | None = None
    contact_name: str | None = None
    phone: str = ""
    summary: str = ""
    by: str | None = None


MESSAGE_TYPES: tuple[type[BusMessage], ...] = (
    AgentState,
    ServiceHealth,
    CallEvent,
    CampaignStats,
    CampaignPacing,
    CallQuality,
    WelfareAlert,
)
"""Every message type on the bus."""
