"""IVR flow definitions: the YAML format and its typed model.

A flow is a set of named nodes and a ``start`` node::

    name: vaccination_reminder
    voice: cmn                      # TTS voice for `say` texts
    fields: [name, clinic, date]    # contact fields the texts use, {name} etc.
    start: intro
    nodes:
      intro:   {type: play, say: "{name}您好，…", next: ask}
      ask:
        type: gather
        prompt: "确认请按一，…"        # a string is TTS text; or {file: prompts/ask.wav}
        timeout: 5                  # seconds to wait for the first key after the prompt
        retries: 2                  # prompts again this many times on no input / invalid input
        on: {"1": confirmed, "0": agent}
        no_input: no_answer
      confirmed: {type: set_outcome, outcome: confirmed, next: bye}
      bye:     {type: hangup, prompt: "再见。"}
      agent:   {type: transfer, skill: vaccination}

Node types: play, gather, branch, record, transfer, set_outcome, hangup. Any node may carry
``max_visits`` and ``over_limit``: entering it once more than ``max_visits`` goes to
``over_limit`` instead (how "press 1 to hear it again" stays bounded).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from core.i18n import _

# Outcomes a flow may set without declaring them; they match what the dialer classifies.
STANDARD_OUTCOMES: frozenset[str] = frozenset(
    {"confirmed", "completed", "reschedule", "opted_out", "agent", "help", "callback", "no_input"}
)
NODE_ID = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
DTMF = re.compile(r"^[0-9*#]+$")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_FIELD = re.compile(r"^\w+$")


# ------------------------------------------------------------------ placeholders


def placeholders(text: str) -> tuple[list[str], list[str]]:
    """Field names used as ``{field}`` in text, and malformed braces (``{{``/``}}`` are literal)."""
    names: list[str] = []
    bad: list[str] = []
    for m in _PLACEHOLDER.finditer(text):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        name = m.group(1)
        if name is None or not _FIELD.match(name.strip()):
            bad.append(token)
        elif name.strip() not in names:
            names.append(name.strip())
    return names, bad


def is_personal(text: str | None) -> bool:
    """Whether ``text`` has a ``{field}`` placeholder, i.e. renders to words about one contact."""
    return any(m.group(1) is not None for m in _PLACEHOLDER.finditer(text or ""))


def render(text: str, fields: Mapping[str, object]) -> tuple[str, list[str]]:
    """Text with ``{field}`` replaced by the contact's value; returns the text and missing fields."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        if m.group(1) is None:  # a lone brace stays as written (`ivr check` reports it)
            return whole
        name = m.group(1).strip()
        value = fields.get(name)
        if value is None or value == "":
            missing.append(name)
            return ""
        return str(value)

    return _PLACEHOLDER.sub(sub, text), missing


# ------------------------------------------------------------------ model


class Prompt(BaseModel):
    """Something to play: TTS text (``say``) or a recorded file (``file``), exactly one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str | None = None
    file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"say": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Prompt:
        if (self.say is None) == (self.file is None):
            raise ValueError(_("give exactly one of `say` (TTS text) or `file` (a recorded prompt)"))
        if self.say is not None and not self.say.strip():
            raise ValueError(_("`say` text is empty"))
        return self


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    max_visits: int | None = Field(default=None, ge=1, le=100)
    over_limit: str | None = None

    def prompts(self) -> Iterator[tuple[tuple[str, ...], Prompt]]:
        """Every prompt of the node with its place inside the node."""
        return iter(())

    def edges(self) -> Iterator[tuple[tuple[str, ...], str]]:
        """Every node this node can go to, with the place that names it."""
        if self.over_limit is not None:
            yield ("over_limit",), self.over_limit

    @property
    def ends_call(self) -> bool:
        return False

    def successor_required(self) -> str | None:
        """The field that must name a next node, when it is missing (None: fine)."""
        return None


class _GoesOn(_Node):
    """A node that goes on to the node named by `next` (which must be given)."""

    next: str | None = None

    def edges(self) -> Iterator[tuple[tuple[str, ...], str]]:
        yield from super().edges()
        if self.next is not None:
            yield ("next",), self.next

    def successor_required(self) -> str | None:
        return "next" if self.next is None else None


class _MayPrompt(_Node):
    """A node with an optional prompt played first."""

    prompt: Prompt | None = None

    def prompts(self) -> Iterator[tuple[tuple[str, ...], Prompt]]:
        if self.prompt is not None:
            yield ("prompt",), self.prompt


class PlayNode(_GoesOn):
    type: Literal["play"]
    say: str | None = None
    file: str | None = None
    repeat: int = Field(default=1, ge=1, le=10)
    gap: float = Field(default=0.8, ge=0, le=10, description="seconds of silence between repeats")

    @model_validator(mode="after")
    def _one_source(self) -> PlayNode:
        Prompt(say=self.say, file=self.file)  # same rule as a prompt
        return self

    @property
    def prompt(self) -> Prompt:
        return Prompt(say=self.say, file=self.file)

    def prompts(self) -> Iterator[tuple[tuple[str, ...], Prompt]]:
        yield ("say" if self.say is not None else "file",), self.prompt


def _digits(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return [_digits(v) for v in value]
    return value


class GatherNode(_Node):
    type: Literal["gather"]
    prompt: Prompt
    max_digits: int = Field(default=1, ge=1, le=32)
    timeout: float = Field(default=5.0, gt=0, le=60, description="seconds for the first key after the prompt")
    inter_digit_timeout: float = Field(default=3.0, gt=0, le=30)
    terminator: Literal["#", "*"] | None = None
    retries: int = Field(default=2, ge=0, le=10)
    valid: list[str] | None = None
    on: dict[str, str] = Field(default_factory=dict)
    next: str | None = Field(default=None, description="where a valid entry not named in `on` goes")
    no_input: str | None = None
    invalid: str | None = Field(default=None, description="default: the no_input target")
    no_input_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None

    @field_validator("valid", mode="before")
    @classmethod
    def _valid_as_text(cls, value: Any) -> Any:
        return _digits(value)

    def valid_entries(self) -> list[str]:
        return list(self.valid) if self.valid is not None else list(self.on)

    def prompts(self) -> Iterator[tuple[tuple[str, ...], Prompt]]:
        yield ("prompt",), self.prompt
        if self.no_input_prompt is not None:
            yield ("no_input_prompt",), self.no_input_prompt
        if self.invalid_prompt is not None:
            yield ("invalid_prompt",), self.invalid_prompt

    def edges(self) -> Iterator[tuple[tuple[str, ...], str]]:
        yield from super().edges()
        for digit, target in self.on.items():
            yield ("on", digit), target
        if self.next is not None:
            yield ("next",), self.next
        if self.no_input is not None:
            yield ("no_input",), self.no_input
        if self.invalid is not None:
            yield ("invalid",), self.invalid

    def successor_required(self) -> str | None:
        return "no_input" if self.no_input is None else None

    def target_for(self, entry: str) -> str | None:
        return self.on.get(entry, self.next)


class BranchNode(_Node):
    type: Literal["branch"]
    field: str = Field(description="a contact field, or input.<gather id>, last_input, outcome")
    cases: dict[str, str] = Field(default_factory=dict)
    default: str | None = None

    def edges(self) -> Iterator[tuple[tuple[str, ...], str]]:
        yield from super().edges()
        for value, target in self.cases.items():
            yield ("cases", value), target
        if self.default is not None:
            yield ("default",), self.default

    def successor_required(self) -> str | None:
        return "default" if self.default is None else None


class RecordNode(_MayPrompt, _GoesOn):
    type: Literal["record"]
    max_seconds: int = Field(default=60, ge=1, le=600)
    beep: bool = True
    silence_end: int | None = Field(default=3, ge=1, le=60, description="stop after this much silence")
    terminate_on: Literal["none", "any", "*", "#"] = "#"


class TransferNode(_MayPrompt):
    """Ends the flow with a request to connect the call to an agent queue; the call stays up."""

    type: Literal["transfer"]
    skill: str = Field(min_length=1)
    queue: str | None = None
    priority: int = Field(default=0, ge=0, le=100)
    language: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
        description="only agents who speak this language (a tag: zh-CN, yue, en) take the call",
    )

    @property
    def ends_call(self) -> bool:
        return True


class SetOutcomeNode(_GoesOn):
    type: Literal["set_outcome"]
    outcome: str = Field(min_length=1)
    escalate: bool = Field(default=False, description="raise a welfare alert for this call")


class HangupNode(_MayPrompt):
    type: Literal["hangup"]

    @property
    def ends_call(self) -> bool:
        return True


Node = Annotated[
    PlayNode | GatherNode | BranchNode | RecordNode | TransferNode | SetOutcomeNode | HangupNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("play", "gather", "branch", "record", "transfer", "set_outcome", "hangup")


class FlowHeader(BaseModel):
    """Everything of a flow but its nodes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    voice: str = "cmn"
    start: str = Field(min_length=1)
    fields: list[str] = Field(default_factory=list, description="contact fields the flow uses")
    outcomes: list[str] = Field(default_factory=list, description="outcomes beyond the standard ones")
    max_steps: int = Field(default=200, ge=1, le=10_000, description="node visits before the runner stops")


class Flow(FlowHeader):
    nodes: dict[str, Node]
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ids(self) -> Flow:
        for node_id, node in self.nodes.items():
            node.id = node_id
        return self

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def base_dir(self) -> Path | None:
        return self._source.parent if self._source is not None else None

    def with_source(self, source: Path | None) -> Flow:
        self._source = source.resolve() if source is not None else None
        return self

    def all_prompts(self) -> Iterator[tuple[str, tuple[str, ...], Prompt]]:
        for node_id, node in self.nodes.items():
            for where, prompt in node.prompts():
                yield node_id, where, prompt

    @property
    def known_outcomes(self) -> frozenset[str]:
        return STANDARD_OUTCOMES | frozenset(self.outcomes)


def resolve_prompt_file(name: str, base_dir: Path | None, prompt_dirs: tuple[Path, ...] = ()) -> Path | None:
    """A recorded prompt's file: absolute, or relative to the flow's folder, then to prompt_dirs."""
    path = Path(name)
    if path.is_absolute():
        return path if path.is_file() else None
    for folder in (*([base_dir] if base_dir is not None else []), *prompt_dirs):
        candidate = folder / path
        if candidate.is_file():
            return candidate.resolve()
    return None
