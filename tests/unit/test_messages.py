"""Bus message schemas: fields, topics, retain flags and JSON round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from core.messages import (
    DEFAULT_PREFIX,
    MESSAGE_TYPES,
    SCHEMA_VERSION,
    AgentState,
    BusMessage,
    CallEvent,
    CampaignPacing,
    CampaignStats,
    ServiceHealth,
    check_topic_level,
)

SINCE = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def samples() -> list[BusMessage]:
    return [
        AgentState(agent="1001", state="on_call", reason=None, since=SINCE),
        ServiceHealth(component="dialer", ok=False, detail="database unreachable"),
        CallEvent(
            call_id="6f1c2a9e-7d1b-4b7e-9a53-0f6f0c1d2e3f",
            campaign="flu-2026",
            kind="answered",
            detail={"number": "138****8000", "amd": "HUMAN"},
        ),
        CampaignStats(campaign="flu-2026", figures={"dialled": 120, "answered": 80}),
    ]


@pytest.mark.parametrize("message", samples(), ids=lambda m: type(m).__name__)
def test_json_round_trip(message: BusMessage) -> None:
    raw = message.model_dump_json()
    again = type(message).model_validate_json(raw)
    assert again == message
    data = json.loads(raw)
    assert data["v"] == SCHEMA_VERSION
    assert data["at"].endswith("Z")


def test_topics_and_retain_flags() -> None:
    agent, health, call, stats = samples()
    assert agent.topic() == "warmline/agents/1001/state"
    assert health.topic() == "warmline/health/dialer"
    assert call.topic() == "warmline/calls/6f1c2a9e-7d1b-4b7e-9a53-0f6f0c1d2e3f"
    assert stats.topic("site-b/warmline") == "site-b/warmline/campaigns/flu-2026/stats"
    assert [m.retained for m in (agent, health, call, stats)] == [True, True, False, True]
    assert agent.path == "agents/1001/state"


def test_campaign_pacing_is_retained_per_campaign() -> None:
    msg = CampaignPacing(
        campaign="followup",
        reason="holding_back",
        params={"rate": 0.027, "limit": 0.03},
        reason_text="放缓拨号：放弃率 2.7%，上限 3%",
        abandon_rate=0.027,
        occupancy=0.84,
    )
    assert msg.topic() == "warmline/campaigns/followup/pacing" and msg.retained
    assert CampaignPacing.model_validate_json(msg.model_dump_json()) == msg


def test_class_level_topic_helpers() -> None:
    assert AgentState.topic_keys() == ("agent",)
    assert AgentState.path_for(agent="1002") == "agents/1002/state"
    assert AgentState.topic_for(agent="1002") == f"{DEFAULT_PREFIX}/agents/1002/state"
    assert AgentState.pattern() == "agents/+/state"
    assert AgentState.pattern(agent="1002") == "agents/1002/state"
    assert CampaignStats.pattern() == "campaigns/+/stats"
    assert ServiceHealth.pattern() == "health/+"
    with pytest.raises(ValueError, match="needs agent"):
        AgentState.path_for()
    with pytest.raises(ValueError, match="has no campaign"):
        AgentState.pattern(campaign="x")


def test_every_message_type_has_a_topic() -> None:
    for cls in MESSAGE_TYPES:
        assert cls.topic_template
        assert cls.topic_keys()


@pytest.mark.parametrize(
    "level",
    ["", "a/b", "a+b", "a#", "13800138000", "+8613800138000", "138 0013 8000", "(010) 6552-1234", "x" * 129],
)
def test_bad_topic_levels_are_refused(level: str) -> None:
    with pytest.raises(ValueError):
        check_topic_level(level)
    with pytest.raises(ValidationError):
        AgentState(agent=level, state="available", since=SINCE)


@pytest.mark.parametrize(
    "level", ["1001", "agent-7", "张三", "flu 2026", "6f1c2a9e-7d1b-4b7e-9a53-0f6f0c1d2e3f"]
)
def test_ordinary_topic_levels_pass(level: str) -> None:
    assert check_topic_level(level) == level


def test_phone_number_cannot_become_a_call_topic() -> None:
    with pytest.raises(ValidationError, match="phone number"):
        CallEvent(call_id="+86 138 0013 8000", kind="answered")


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValidationError):
        AgentState.model_validate({"agent": "1001", "state": "asleep", "since": SINCE.isoformat()})


def test_timestamps_must_be_aware_and_become_utc() -> None:
    with pytest.raises(ValidationError):
        AgentState(agent="1001", state="available", since=datetime(2026, 3, 1, 9, 30))
    shanghai = timezone(timedelta(hours=8))
    state = AgentState(agent="1001", state="break", since=datetime(2026, 3, 1, 17, 30, tzinfo=shanghai))
    assert state.since == SINCE.replace(hour=9)
    assert state.since.utcoffset() == timedelta(0)
    assert state.at.tzinfo is not None
    assert (datetime.now(UTC) - state.at) < timedelta(seconds=5)


def test_newer_senders_extra_fields_are_ignored() -> None:
    raw = {"v": 2, "at": "2026-03-01T09:30:00Z", "component": "ivr", "ok": True, "load": 0.7}
    health = ServiceHealth.model_validate(raw)
    assert health.v == 2
    assert health.ok is True


def test_messages_are_immutable() -> None:
    state = AgentState(agent="1001", state="on_call", since=SINCE)
    with pytest.raises(ValidationError):
        state.state = "available"  # type: ignore[misc]


def test_call_event_defaults() -> None:
    event = CallEvent(call_id="c-1", kind="hangup")
    assert event.campaign is None
    assert event.detail == {}
    with pytest.raises(ValidationError):
        CallEvent(call_id="c-1", kind="")
