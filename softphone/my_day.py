"""*My day* as the softphone shows it: the server's figures (``GET /api/workforce/my-day``) as facts
a screen reader reads in order, in the phone's language, and the daily target's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.formats import duration
from core.i18n import _


def _hm(text: str | None) -> str:
    return datetime.fromisoformat(text).strftime("%H:%M") if text else _("now")


def my_day_view(report: dict[str, Any]) -> dict[str, Any]:
    """{"facts": [[label, value], ...], "progress": 0..1, "warning": None|"near"|"over"}."""
    shifts = report.get("shifts") or []
    spans = ", ".join(f"{_hm(s.get('start'))}–{_hm(s.get('end'))}" for s in shifts) or _("none yet")
    worked, target = int(report.get("worked_s", 0)), int(report.get("target_s", 0))
    progress = float(report.get("progress", 0.0))
    warning = report.get("warning")
    if warning == "over":
        overtime = _("{over} already", over=duration(int(report.get("overtime_s", 0))))
    elif warning == "near":
        left = max(0, int(report.get("day_limit_s", 0)) - worked)
        overtime = _("begins in {left}", left=duration(left - left % 60))
    else:
        overtime = _("none")
    facts = [
        (_("Shifts today"), spans),
        (_("Worked"), duration(worked - worked % 60)),
        (_("Night hours"), duration(int(report.get("night_s", 0)) // 60 * 60)),
        (_("Calls"), str(int(report.get("calls", 0)))),
        (_("Talk time"), duration(int(report.get("talk_s", 0)) // 60 * 60)),
        (
            _("Daily target"),
            _(
                "{worked} of {target} ({share:.0%})",
                worked=duration(worked - worked % 60),
                target=duration(target),
                share=progress,
            ),
        ),
        (_("Overtime"), overtime),
        (_("Compliments from callers"), str(int(report.get("compliments", 0)))),
        (
            _("Breaks this shift"),
            _(
                "{taken} of {allowance} minutes used",
                taken=int(report.get("break_taken_min", 0)),
                allowance=int(report.get("break_allowance_min", 0)),
            ),
        ),
    ]
    return {"facts": [list(f) for f in facts], "progress": progress, "warning": warning}
