"""A running broadcast campaign for crash tests, one contact per callee digit (the lab's callee
behaviour is the number's last digit)."""

from __future__ import annotations

import io

from core.db import Database
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus

RETRY_OUTCOMES = ("busy", "no_answer", "machine", "failed", "abandoned", "no_input")


def make_running_campaign(db: Database, name: str, digits: str, *, retry_seconds: int = 20) -> None:
    """Retries `retry_seconds` apart, at most 3 attempts, every hour open, one contact per digit."""
    rule = {"delay": f"{retry_seconds}s", "growth": 1, "max_attempts": 3}
    spec = {
        "name": name,
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["00:00-24:00"]},
        "retry": {outcome: dict(rule) for outcome in RETRY_OUTCOMES},
        "max_attempts": 3,
        "daily_cap": 10,
        "rolling_cap": 10,
        "max_channels": 30,
        "calls_per_second": 10,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="test")
    lines = ["name,phone,clinic,date"] + [
        f"客户{i},139{i:07d}{d},社区医院,明天" for i, d in enumerate(digits)
    ]
    import_list(db, name, io.BytesIO(("\n".join(lines) + "\n").encode()), "list.csv", actor="test")
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor="test")
