"""Campaign settings (YAML, defaults, errors that say where) and the life cycle, on both databases."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit import AuditEntry
from core.db import Database
from core.i18n import use_locale
from dialer import campaigns as svc
from dialer.campaigns import CampaignError, CampaignSpec, SpecError, load_spec_file, load_spec_text
from dialer.models import CampaignStatus

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "campaigns"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_files_are_valid(path: Path) -> None:
    spec = load_spec_file(path, "from-example")
    assert spec.name == "from-example"  # the command names the campaign, not the file
    assert set(spec.windows) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


def test_defaults_without_a_file() -> None:
    spec = CampaignSpec(name="hotline")
    assert (spec.kind.value, spec.timezone, spec.amd) == ("agent", "Asia/Shanghai", "retry")
    assert spec.windows["mon"] == ["09:00-12:00", "13:30-20:00"]
    assert set(spec.retry) == {
        "busy", "no_answer", "machine", "failed", "abandoned", "no_input", "callback",
        "retry_later",  # an agent's "call again" wrap-up
    }  # fmt: skip
    elder = CampaignSpec(name="welfare", elder_welfare=True)
    assert all(w == ["09:00-11:30", "14:30-17:00"] for w in elder.windows.values())
    broadcast = CampaignSpec(name="notice", kind="broadcast", flow="notice-flow")
    assert broadcast.amd == "leave_message"


@pytest.mark.usefixtures("english")
def test_modes_and_what_agents_need() -> None:
    assert CampaignSpec(name="hotline").mode.value == "broadcast", "as every campaign dialled before modes"
    preview = CampaignSpec(
        name="followup", mode="preview", skill="welfare", language="ZH-cn", manual_dial=True
    )
    assert (preview.mode.value, preview.skill, preview.language, preview.manual_dial) == (
        "preview", "welfare", "zh-CN", True,
    )  # fmt: skip
    for mode in ("progressive", "predictive"):
        assert CampaignSpec(name="x", mode=mode).mode.value == mode, "the shape only: dialled as broadcast"
    cases = {
        "mode: preview\nkind: broadcast\nflow: f\n": "line 1: mode: a preview campaign connects its calls to agents",
        "mode: preview\nflow: f\n": "flow: a preview campaign's calls go straight to the agent",
        "manual_dial: true\nkind: broadcast\nflow: f\n": "manual_dial: agents place calls only in an agent campaign",
        "mode: fast\n": "line 1: mode: Must be one of: 'broadcast', 'preview', 'progressive' or 'predictive'.",
        "skill: any\n": "line 1: skill: 'any' is not a skill",
    }
    with use_locale("en"):
        for text, words in cases.items():
            with pytest.raises(SpecError) as err:
                load_spec_text(text, "x", "c.yaml")
            assert any(words in p for p in err.value.problems), (text, err.value.problems)


def test_mode_and_skill_are_stored_and_shown(db: Database) -> None:
    with db.session() as s:
        spec = svc.build_spec(
            {"name": "followup", "mode": "preview", "skill": "welfare", "manual_dial": True}
        )
        svc.create_campaign(s, spec, actor="t")
    with db.session() as s, use_locale("en"):
        info = svc.describe(s, svc.require_campaign(s, "followup"))
        text = svc.describe_text(info)
    assert (info["mode"], info["skill"], info["manual_dial"]) == ("preview", "welfare", True)
    assert "mode: preview (agents pull contacts and place the calls); agents may dial typed numbers" in text
    assert "agents: skill welfare" in text


def test_partial_retry_rule_keeps_the_other_defaults() -> None:
    spec = load_spec_text("retry:\n  busy: {max_attempts: 5}\n  no_answer: {delay: 2h}\n", "x")
    assert (spec.retry["busy"].max_attempts, spec.retry["busy"].delay_minutes) == (5, 10)
    assert (spec.retry["no_answer"].delay_minutes, spec.retry["no_answer"].growth) == (120, 2.0)


@pytest.mark.usefixtures("english")
def test_errors_say_what_and_where() -> None:
    text = (
        "kind: broadcast\n"  # 1: needs a flow
        "windows:\n"  # 2
        "  mon: ['09:00-08:00']\n"  # 3
        "retry:\n"  # 4
        "  busy: {delay: soon}\n"  # 5
        "  sleepy: {delay: 1h}\n"  # 6
        "timezone: Mars/Olympus\n"  # 7
        "max_attempts: 0\n"  # 8
        "colour: red\n"  # 9
    )
    with pytest.raises(SpecError) as err:
        load_spec_text(text, "x", "camp.yaml")
    message = str(err.value)
    assert message.startswith("camp.yaml: invalid campaign settings")
    problems = err.value.problems
    assert any(p.startswith("line 3: windows.mon:") and "ends before it starts" in p for p in problems)
    assert any(p.startswith("line 4: retry:") and "unknown outcome 'sleepy'" in p for p in problems)
    assert any(p.startswith("line 7: timezone:") and "Mars/Olympus" in p for p in problems)
    assert any(p.startswith("line 8: max_attempts:") for p in problems)
    assert any(p.startswith("line 9: colour: unknown setting") for p in problems)
    with pytest.raises(SpecError, match=r"line 4: retry.busy.delay: 'soon' is not a duration"):
        load_spec_text("retry:\n  busy:\n    max_attempts: 2\n    delay: soon\n", "x")
    with pytest.raises(SpecError, match="flow: a broadcast campaign needs the IVR flow"):
        load_spec_text("kind: broadcast\n", "x")
    with pytest.raises(SpecError, match=r"line \d+, column \d+: not valid YAML"):
        load_spec_text("a: 1\nb: [\n", "x")
    with pytest.raises(SpecError, match="no calling window on any day"):
        load_spec_text("windows: {daily: []}\n", "x")
    with pytest.raises(SpecError, match="overlap"):
        load_spec_text("windows: {mon: ['09:00-12:00', '11:00-13:00']}\n", "x")
    with pytest.raises(SpecError, match="name:"):
        svc.build_spec({"name": "has space"})


@pytest.mark.usefixtures("english")
def test_yaml_read_with_places_twice_set_keys_and_words() -> None:
    with pytest.raises(SpecError, match=r"line 3: priority: set twice"):
        load_spec_text("priority: 3\nmax_channels: 4\npriority: 9\n", "x")
    with pytest.raises(SpecError, match=r"line 1, column 13: not valid YAML \('2026-13-45' cannot be read"):
        load_spec_text("start_date: 2026-13-45\n", "x")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec_text("- a\n- b\n", "x")
    assert load_spec_text("", "x").name == "x"
    spec = load_spec_text("elder_welfare: yes\nstart_date: 2026-11-24\n", "x")  # YAML 1.1 words still read
    assert spec.elder_welfare is True and spec.start_date == date(2026, 11, 24)


@pytest.mark.usefixtures("english")
def test_life_cycle_and_audit(db: Database) -> None:
    with db.session() as s:
        svc.create_campaign(s, load_spec_file(EXAMPLES / "elder-welfare.yaml", "welfare"), actor="mgr")
    with db.session() as s, pytest.raises(CampaignError, match="already exists"):
        svc.create_campaign(s, CampaignSpec(name="welfare"), actor="mgr")
    with db.session() as s:
        c = svc.require_campaign(s, "welfare")
        assert c.status is CampaignStatus.draft and c.spec.caller_id == "12345"
        assert c.spec.retry["no_answer"].max_delay_minutes == 240
        svc.set_status(s, "welfare", CampaignStatus.running, actor="mgr")
        svc.set_status(s, "welfare", CampaignStatus.paused, actor="sup")
    with db.session() as s, pytest.raises(CampaignError, match="is paused; it cannot become draft"):
        svc.set_status(s, "welfare", CampaignStatus.draft, actor="mgr")
    with db.session() as s:
        svc.update_campaign(s, "welfare", {"priority": 9, "windows": {"daily": ["10:00-11:00"]}}, actor="mgr")
    with db.session() as s:
        c = svc.require_campaign(s, "welfare")
        assert c.priority == 9 and c.spec.windows["sun"] == ["10:00-11:00"]
        info = svc.describe(s, c)
        assert info["status"] == "paused" and info["contacts"]["total"] == 0
        assert "welfare (agent, elder welfare): paused" in svc.describe_text(info)
        svc.set_status(s, "welfare", CampaignStatus.finished, actor="mgr")
    with db.session() as s, pytest.raises(CampaignError, match="finished"):
        svc.update_campaign(s, "welfare", {"priority": 1}, actor="mgr")
    with db.session() as s, pytest.raises(CampaignError, match="no campaign named 'nope'"):
        svc.require_campaign(s, "nope")
    with db.session() as s:
        actions = [a for (a,) in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert actions == [
        "campaign.create", "campaign.running", "campaign.paused", "campaign.update", "campaign.finished",
    ]  # fmt: skip


def test_elder_welfare_switch_follows_default_windows(db: Database) -> None:
    with db.session() as s:
        svc.create_campaign(s, CampaignSpec(name="c1"), actor="mgr")
        svc.update_campaign(s, "c1", {"elder_welfare": True}, actor="mgr")
        assert svc.require_campaign(s, "c1").spec.windows["mon"] == ["09:00-11:30", "14:30-17:00"]


@pytest.mark.usefixtures("english")
def test_a_campaign_past_its_end_date_cannot_start(db: Database) -> None:
    with db.session() as s:
        svc.create_campaign(s, load_spec_file(EXAMPLES / "vaccination-reminder.yaml", "flu2024"), actor="mgr")
    with db.session() as s, pytest.raises(CampaignError, match="ended on 2024-12-15"):
        svc.set_status(s, "flu2024", CampaignStatus.running, actor="mgr")


@pytest.mark.usefixtures("english")
def test_a_survey_campaign_rings_its_agents_and_refuses_to_be_nailed() -> None:
    """Agents are kept on the line by default, but a nailed call's callee leaves with the agent,
    so a campaign with the survey rings its agents; asking for both is refused, naming the field."""
    base = {"name": "w", "kind": "agent", "mode": "progressive", "skill": "welfare"}
    assert svc.build_spec(base).nailed is True
    assert svc.build_spec({**base, "survey": True}).nailed is False
    with pytest.raises(SpecError, match=r"nailed: a campaign with the survey rings its agents"):
        svc.build_spec({**base, "survey": True, "nailed": True})
