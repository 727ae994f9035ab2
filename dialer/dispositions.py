"""Dispositions: what an agent says became of a call, and what the server then does.

A campaign lists its dispositions in its YAML (``dispositions:``), at most nine, in the order of the
softphone's number keys (the first is key 1). Each has a code (what is stored and exported), a
label in Chinese (what the agents read; the people on both ends of these calls are Chinese), an
English label, and one action:

- ``callback`` — the contact is due again at the time the agent chose (moved into the next calling
  window when it falls outside one), kept for the same agent for the campaign's
  ``callback_grace_minutes``, then for anyone with the skill;
- ``opt_out`` — the number goes on the global do-not-call list at once, as the IVR's 9 does;
- ``welfare_concern`` — a welfare alert (kind ``agent_concern``) for supervisors;
- ``wrong_number`` — the contact is finished and never called again;
- ``done`` — the contact is finished: the campaign's goal is met;
- ``retry_later`` — the contact is due again after the campaign's ``retry.retry_later`` rule.

A campaign that names none gets :data:`DEFAULT_DISPOSITIONS`, the list the softphone shows when it
cannot ask the server (``softphone.phone.DEFAULT_DISPOSITIONS`` holds the same codes, keys and
English labels; a test keeps the two aligned).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.i18n import _

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_DISPOSITIONS = 9  # one per number key, 1 to 9


class DispositionAction(enum.StrEnum):
    callback = "callback"
    opt_out = "opt_out"
    welfare_concern = "welfare_concern"
    wrong_number = "wrong_number"
    done = "done"
    retry_later = "retry_later"


class Disposition(BaseModel):
    """One choice in the agent's wrap-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="stored with the attempt and exported; a-z, 0-9, _")
    label: str = Field(min_length=1, max_length=64, description="what the agent reads (zh-CN)")
    label_en: str = Field(default="", max_length=64, description="the English label")
    action: DispositionAction

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE_RE.match(v):
            raise ValueError(
                _("a code: 1-32 lower-case letters, digits or _, starting with a letter (call_back)")
            )
        return v


DEFAULT_DISPOSITIONS: tuple[Disposition, ...] = tuple(
    Disposition(code=code, label=zh, label_en=en, action=DispositionAction(action))
    for code, zh, en, action in (
        ("confirmed", "已接通，已确认", "Reached, confirmed", "done"),
        ("follow_up", "已接通，需再跟进", "Reached, needs follow-up", "retry_later"),
        ("callback", "约定回拨", "Callback requested", "callback"),
        ("wrong_number", "号码错误", "Wrong number", "wrong_number"),
        ("no_answer", "语音信箱或无人接听", "Voicemail or no answer", "retry_later"),
        ("refused", "拒绝", "Refused", "done"),
        ("opt_out", "要求不再来电", "Opted out: do not call again", "opt_out"),
        (
            "welfare_concern",
            "担心对方安危，报告主管",
            "Welfare concern: tell a supervisor",
            "welfare_concern",
        ),
        ("other", "其他", "Other", "done"),
    )
)


def check_dispositions(items: Sequence[Disposition]) -> list[Disposition]:
    """A campaign's list as given, or the defaults when it gives none; raises ValueError naming
    the problem (too many for the keys, a code twice)."""
    if not items:
        return list(DEFAULT_DISPOSITIONS)
    if len(items) > MAX_DISPOSITIONS:
        raise ValueError(
            _(
                "at most {most} (one per number key 1-9); this list has {n}",
                most=MAX_DISPOSITIONS,
                n=len(items),
            )
        )
    seen: set[str] = set()
    for item in items:
        if item.code in seen:
            raise ValueError(_("code '{code}' is listed twice", code=item.code))
        seen.add(item.code)
    return list(items)


def find(items: Sequence[Disposition], code: str) -> Disposition | None:
    return next((d for d in items if d.code == code), None)
