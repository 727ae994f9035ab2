"""Agents' wrap-ups kept on the attempt and acted on, with a clock the test controls: every action,
the callback's window and agent, the refusals and repeats, the campaign's dispositions. Every test
runs on SQLite and PostgreSQL (the db fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from agents.routing import choose_agent, set_state
from core.audit import AuditEntry
from core.db import Database
from dialer import campaigns as svc
from dialer.dispositions import DEFAULT_DISPOSITIONS
from dialer.engine.ledger import claim, close, took_call
from dialer.models import Attempt, CampaignStatus, Contact, ContactState, DncGlobal
from dialer.outcomes import CallFacts
from dialer.welfare.models import Alert
from dialer.wrapup import (
    AlreadyWrappedUp,
    InvalidWrapUp,
    NotYourCall,
    UnknownCall,
    WrapUpRequest,
    WrapUpResult,
    record_wrapup,
)
from softphone.phone import DEFAULT_DISPOSITIONS as PHONE_DEFAULTS
from tests.unit.test_routing import cand

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

T0 = datetime(2024, 11, 4, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai
PHONE = "+8613800000001"
TALKED = CallFacts(answered=True, amd_status="HUMAN", flow_outcome="agent")


def make(db: Database, name: str = "c1", phones: tuple[str, ...] = (PHONE,), **kw: Any) -> int:
    spec: dict[str, Any] = {
        "name": name,
        "kind": "agent",
        "windows": {"daily": ["09:00-12:00", "14:00-18:00"]},
        "retry": {"retry_later": {"delay": "1h", "max_attempts": 2}},
        **kw,
    }
    with db.session() as session:
        campaign = svc.create_campaign(session, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        for p in phones:
            session.add(Contact(campaign_id=campaign.id, phone_e164=p, name="王奶奶"))
        return campaign.id


def taken(db: Database, at: datetime = T0, agent: str = "mei", campaign: str = "c1") -> str:
    """A call of the campaign's next contact, answered and taken by `agent`: its attempt id."""
    with db.session() as session:
        [c] = claim(session, svc.require_campaign(session, campaign), 1, at, node="lab")
    with db.session() as session:
        took_call(session, c.attempt_id, agent)
    return c.attempt_id


def hang_up(db: Database, attempt_id: str, at: datetime) -> None:
    with db.session() as session:
        closed = close(session, attempt_id, TALKED, at, detail={"agent_name": "mei"})
        assert closed is not None and closed.outcome == "agent"


def wrap(db: Database, attempt_id: str, disposition: str, at: datetime, **kw: Any) -> WrapUpResult:
    request = WrapUpRequest(call_ref=attempt_id, agent=kw.pop("agent", "mei"), disposition=disposition, **kw)
    with db.session() as session:
        return record_wrapup(session, request, at)


def contact(db: Database, phone: str = PHONE, campaign: str = "c1") -> Contact:
    with db.session() as session:
        cid = svc.require_campaign(session, campaign).id
        found = session.scalar(select(Contact).where(Contact.phone_e164 == phone, Contact.campaign_id == cid))
        assert found is not None
        return found


def attempt(db: Database, attempt_id: str) -> Attempt:
    with db.session() as session:
        found = session.get(Attempt, attempt_id)
        assert found is not None
        return found


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai wall-clock time as UTC."""
    return datetime(year, month, day, hour - 8, minute, tzinfo=UTC)


# ------------------------------------------------------------------------------ callback


def test_callback_posted_before_the_dialer_closes_the_call_survives_the_close(db: Database) -> None:
    make(db)
    aid = taken(db)
    when = local(2024, 11, 4, 15, 30)
    result = wrap(db, aid, "callback", T0 + timedelta(minutes=5), callback_at=when, note="下午再打")
    assert (result.callback_at, result.moved, result.contact_state) == (when, None, None)
    stored = attempt(db, aid)
    assert (stored.disposition, stored.note, stored.callback_at, stored.agent) == (
        "callback",
        "下午再打",
        when,
        "mei",
    )
    hang_up(db, aid, T0 + timedelta(minutes=6))  # the dialer sees the hang-up after the wrap-up
    c = contact(db)
    assert (c.state, c.next_due_at, c.last_outcome) == (ContactState.pending, when, "agent")
    assert (c.assigned_agent, c.assigned_until) == ("mei", when + timedelta(minutes=30))


def test_callback_after_the_close_is_applied_at_once(db: Database) -> None:
    make(db, callback_grace="45m")
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=5))
    assert contact(db).state is ContactState.done  # talked to an agent: final, until the wrap-up
    when = local(2024, 11, 5, 10)
    result = wrap(db, aid, "callback", T0 + timedelta(minutes=6), callback_at=when)
    assert result.contact_state == "pending" and result.callback_agent_until == when + timedelta(minutes=45)
    c = contact(db)
    assert (c.state, c.next_due_at, c.assigned_agent) == (ContactState.pending, when, "mei")
    assert "Callback on 2024-11-05 10:00 (Asia/Shanghai)" in result.message


def test_callback_outside_the_window_moves_to_the_next_window_and_says_so(db: Database) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=5))
    evening = local(2024, 11, 4, 20, 30)  # after the 14:00-18:00 window
    result = wrap(db, aid, "callback", T0 + timedelta(minutes=6), callback_at=evening)
    assert result.moved == "window" and result.callback_at == local(2024, 11, 5, 9)
    assert result.message.startswith(
        "2024-11-04 20:30 is outside the calling window; the callback is moved to 2024-11-05 09:00 (Asia/Shanghai)."
    )
    assert result.public()["callback_moved"] == "window"
    assert contact(db).next_due_at == local(2024, 11, 5, 9)
    lunch = wrap_new_call(db, local(2024, 11, 4, 12, 45))
    assert (lunch.moved, lunch.callback_at) == ("window", local(2024, 11, 4, 14))


def wrap_new_call(db: Database, callback_at: datetime) -> WrapUpResult:
    """Another contact's call at T0, wrapped up as a callback for `callback_at`."""
    make(db, name=f"c{callback_at.hour}{callback_at.minute}", phones=("+8613800000099",))
    aid = taken(db, campaign=f"c{callback_at.hour}{callback_at.minute}")
    return wrap(db, aid, "callback", T0 + timedelta(minutes=1), callback_at=callback_at)


def test_a_callback_time_without_a_zone_is_the_callees_local_time(db: Database) -> None:
    make(db)
    aid = taken(db)
    result = wrap(db, aid, "callback", T0, callback_at=datetime(2024, 11, 4, 15, 0))  # naive: Shanghai
    assert result.callback_at == local(2024, 11, 4, 15) and result.moved is None


def test_a_callback_time_that_has_passed_is_due_now(db: Database) -> None:
    """A wrap-up the softphone could only post later: the callback is not lost, it is due now."""
    make(db)
    aid = taken(db)
    later = T0 + timedelta(hours=1)
    result = wrap(db, aid, "callback", later, callback_at=T0 + timedelta(minutes=2))
    assert (result.moved, result.callback_at) == ("past", later)


def test_a_callback_after_the_campaigns_end_is_refused_naming_the_field(db: Database) -> None:
    make(db, end_date="2024-11-05")
    aid = taken(db)
    with pytest.raises(InvalidWrapUp) as refused:
        wrap(db, aid, "callback", T0, callback_at=local(2024, 11, 9, 10))
    assert refused.value.field == "callback_at" and "2024-11-05" in refused.value.message


def test_a_callback_is_dialled_when_due_and_kept_for_its_agent_during_the_grace(db: Database) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=3))
    due = T0 + timedelta(minutes=5)
    wrap(db, aid, "callback", T0 + timedelta(minutes=4), callback_at=due)
    with db.session() as session:
        campaign = svc.require_campaign(session, "c1")
        assert claim(session, campaign, 5, due - timedelta(seconds=1), node="lab") == []  # not before due
        set_state(session, "mei", "on_call", "test", since=T0)
    with db.session() as session:  # due, but mei is busy: looked at again a minute later
        assert claim(session, svc.require_campaign(session, "c1"), 5, due, node="lab") == []
    assert contact(db).next_due_at == due + timedelta(minutes=1)
    with db.session() as session:
        set_state(session, "mei", "available", "test", since=due)
    with db.session() as session:
        [call] = claim(
            session, svc.require_campaign(session, "c1"), 5, due + timedelta(minutes=1), node="lab"
        )
    assert call.assigned_agent == "mei"


def test_after_the_grace_anyone_may_take_the_callback(db: Database) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=3))
    due = T0 + timedelta(minutes=5)
    wrap(db, aid, "callback", T0 + timedelta(minutes=4), callback_at=due)
    with db.session() as session:  # mei never comes back
        set_state(session, "mei", "logged_out", "test", since=T0)
    with db.session() as session:
        assert (
            claim(session, svc.require_campaign(session, "c1"), 5, due + timedelta(minutes=29), node="lab")
            == []
        )
    assert contact(db).next_due_at == due + timedelta(minutes=30)  # rechecked until the grace ends
    with db.session() as session:
        [call] = claim(
            session, svc.require_campaign(session, "c1"), 5, due + timedelta(minutes=30), node="lab"
        )
    assert call.assigned_agent is None


def test_routing_offers_a_callback_to_its_agent_first() -> None:
    lan, mei = cand("lan", idle_min=60), cand("mei", idle_min=1)
    assert choose_agent([lan, mei]) == lan  # longest idle
    assert choose_agent([lan, mei], prefer="mei") == mei
    busy = cand("mei", state="on_call")
    assert choose_agent([lan, busy], prefer="mei") == lan, "the callee is on the line: someone takes it"


# ------------------------------------------------------------------------------ other actions


def test_opt_out_goes_on_the_do_not_call_list_at_once(db: Database) -> None:
    make(db)
    make(db, name="c2")  # the same number pending in another campaign
    aid = taken(db)
    result = wrap(db, aid, "opt_out", T0 + timedelta(minutes=1))  # before the dialer closes the call
    assert result.message == "The number is on the do-not-call list."
    with db.session() as session:
        entry = session.scalar(select(DncGlobal).where(DncGlobal.phone_e164 == PHONE))
        assert entry is not None and entry.added_by == "mei" and "c1" in entry.source
    assert contact(db, campaign="c2").state is ContactState.cancelled
    hang_up(db, aid, T0 + timedelta(minutes=2))
    c = contact(db)
    assert (c.state, c.next_due_at) == (ContactState.done, None)


def test_welfare_concern_raises_an_agent_concern_alert(db: Database) -> None:
    make(db, elder_welfare=True)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=3))
    result = wrap(db, aid, "welfare_concern", T0 + timedelta(minutes=4), note="说话含糊，电话 13800138000")
    with db.session() as session:
        alert = session.scalar(select(Alert))
        assert alert is not None and result.alert_id == alert.id
        assert (alert.kind, alert.attempt_id, alert.detail["agent"]) == ("agent_concern", aid, "mei")
        assert "13800138000" not in alert.detail["note"], "numbers in the note are masked on the alert"
    assert contact(db).state is ContactState.done


def test_wrong_number_finishes_the_contact_for_good(db: Database) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=3))
    wrap(db, aid, "wrong_number", T0 + timedelta(minutes=4))
    c = contact(db)
    assert (c.state, c.next_due_at) == (ContactState.cancelled, None)
    with db.session() as session:
        assert (
            claim(session, svc.require_campaign(session, "c1"), 5, T0 + timedelta(days=1), node="lab") == []
        )


def test_done_finishes_the_contact(db: Database) -> None:
    make(db)
    aid = taken(db)
    wrap(db, aid, "confirmed", T0 + timedelta(minutes=1))
    hang_up(db, aid, T0 + timedelta(minutes=2))
    assert contact(db).state is ContactState.done


def test_retry_later_is_due_after_the_campaigns_retry_delay(db: Database) -> None:
    make(db)
    aid = taken(db)
    wrap(db, aid, "follow_up", T0 + timedelta(minutes=1))
    hang_up(db, aid, T0 + timedelta(minutes=2))
    c = contact(db)
    assert (c.state, c.next_due_at) == (ContactState.pending, T0 + timedelta(hours=1, minutes=2))
    assert c.outcome_counts["retry_later"] == 1
    second = taken(db, at=T0 + timedelta(hours=1, minutes=2))
    hang_up(db, second, T0 + timedelta(hours=1, minutes=5))
    wrap(db, second, "no_answer", T0 + timedelta(hours=1, minutes=6))
    assert contact(db).state is ContactState.exhausted  # retry_later: max_attempts 2


# ------------------------------------------------------------------------------ refusals and repeats


def test_not_the_agents_call_unknown_call_and_bad_input(db: Database) -> None:
    make(db)
    aid = taken(db)
    with pytest.raises(NotYourCall):
        wrap(db, aid, "confirmed", T0, agent="lan")
    with pytest.raises(UnknownCall):
        wrap(db, "no-such-call", "confirmed", T0)
    with pytest.raises(InvalidWrapUp) as bad:
        wrap(db, aid, "maybe", T0)
    assert bad.value.field == "disposition" and "callback" in bad.value.message  # the codes are listed
    with pytest.raises(InvalidWrapUp) as bad:
        wrap(db, aid, "callback", T0)
    assert bad.value.field == "callback_at"
    with pytest.raises(InvalidWrapUp) as bad:
        wrap(db, aid, "confirmed", T0, callback_at=T0)
    assert bad.value.field == "callback_at"
    assert attempt(db, aid).wrapped_up_at is None, "nothing stored by a refused wrap-up"


def test_a_call_no_agent_took_is_nobodys_to_wrap_up(db: Database) -> None:
    make(db)
    with db.session() as session:
        [c] = claim(session, svc.require_campaign(session, "c1"), 1, T0, node="lab")
    with pytest.raises(NotYourCall):
        wrap(db, c.attempt_id, "confirmed", T0)


def test_the_agent_is_known_from_the_close_when_its_note_was_lost(db: Database) -> None:
    make(db)
    with db.session() as session:
        [c] = claim(session, svc.require_campaign(session, "c1"), 1, T0, node="lab")
    hang_up(db, c.attempt_id, T0 + timedelta(minutes=1))  # detail agent_name: mei
    assert attempt(db, c.attempt_id).agent == "mei"
    assert wrap(db, c.attempt_id, "confirmed", T0 + timedelta(minutes=2)).contact_state == "done"


def test_the_same_wrap_up_twice_is_stored_and_acted_on_once(db: Database) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=2))
    first = wrap(db, aid, "follow_up", T0 + timedelta(minutes=3), note="再联系", answers={"接种": "是"})
    again = wrap(db, aid, "follow_up", T0 + timedelta(minutes=9), note="再联系", answers={"接种": "是"})
    assert not first.already and again.already
    assert again.public() | {"already": False} == first.public()
    assert contact(db).outcome_counts["retry_later"] == 1
    with db.session() as session:
        n = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "attempt.wrapup")
        )
        assert n == 1
    with pytest.raises(AlreadyWrappedUp):
        wrap(db, aid, "confirmed", T0 + timedelta(minutes=10))


def test_an_opt_out_posted_twice_lists_the_number_once_and_a_concern_alerts_once(db: Database) -> None:
    make(db, phones=(PHONE, "+8613800000002"))
    out = taken(db)
    wrap(db, out, "opt_out", T0)
    assert wrap(db, out, "opt_out", T0).already
    worry = taken(db)
    wrap(db, worry, "welfare_concern", T0)
    wrap(db, worry, "welfare_concern", T0)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(DncGlobal)) == 1
        assert session.scalar(select(func.count()).select_from(Alert)) == 1


def test_a_late_wrap_up_does_not_undo_a_newer_call(db: Database) -> None:
    make(db)
    aid = taken(db)
    with db.session() as session:
        close(session, aid, CallFacts(answered=True), T0 + timedelta(minutes=1), outcome=None)
    assert contact(db).state is ContactState.pending  # hung up early: retried
    newer = taken(db, at=T0 + timedelta(minutes=90))
    result = wrap(db, aid, "wrong_number", T0 + timedelta(minutes=91))
    assert result.contact_state == "in_progress" and contact(db).state is ContactState.in_progress
    assert attempt(db, aid).disposition == "wrong_number", "still kept on its own attempt"
    assert newer != aid


# ------------------------------------------------------------------------------ the campaign's list


def test_a_campaign_without_dispositions_gets_the_defaults_the_softphone_knows() -> None:
    spec = svc.build_spec({"name": "x"})
    assert spec.dispositions == list(DEFAULT_DISPOSITIONS) and spec.callback_grace_minutes == 30
    assert [(d.key, d.code, d.label_en, d.action, d.label) for d in PHONE_DEFAULTS] == [
        (str(n), d.code, d.label_en, d.action.value, d.label)
        for n, d in enumerate(DEFAULT_DISPOSITIONS, start=1)
    ]


def test_dispositions_from_yaml_and_their_errors() -> None:
    text = """\
dispositions:
  - {code: reached, label: 已回访, label_en: Reached, action: done}
  - {code: call_back, label: 约定回拨, action: callback}
callback_grace: 1h
"""
    spec = svc.load_spec_text(text, "w")
    assert [(d.code, d.action.value) for d in spec.dispositions] == [
        ("reached", "done"),
        ("call_back", "callback"),
    ]
    assert spec.callback_grace_minutes == 60
    bad = "dispositions:\n  - {code: x, label: 甲, action: nap}\n"
    with pytest.raises(svc.SpecError) as err:
        svc.load_spec_text(bad, "w", "w.yaml")
    assert any(p.startswith("line 2: dispositions.0.action") for p in err.value.problems), err.value.problems
    twice = "dispositions:\n  - {code: x, label: 甲, action: done}\n  - {code: x, label: 乙, action: done}\n"
    with pytest.raises(svc.SpecError) as err:
        svc.load_spec_text(twice, "w", "w.yaml")
    assert "code 'x' is listed twice" in str(err.value)
    ten = "dispositions:\n" + "".join(f"  - {{code: c{n}, label: 甲, action: done}}\n" for n in range(10))
    with pytest.raises(svc.SpecError) as err:
        svc.load_spec_text(ten, "w", "w.yaml")
    assert "at most 9" in str(err.value)


def test_dispositions_are_stored_with_the_campaign(db: Database) -> None:
    make(db, dispositions=[{"code": "reached", "label": "已回访", "action": "done"}], callback_grace=15)
    with db.session() as session:
        campaign = svc.require_campaign(session, "c1")
        assert [d.code for d in campaign.spec.dispositions] == ["reached"]
        assert campaign.spec.callback_grace_minutes == 15
        info = svc.describe(session, campaign)
    assert "1 reached: 已回访 → done" in svc.describe_text(info)
    aid = taken(db)
    with pytest.raises(InvalidWrapUp):
        wrap(db, aid, "confirmed", T0)  # a default code, not this campaign's
    assert wrap(db, aid, "reached", T0).action == "done"
