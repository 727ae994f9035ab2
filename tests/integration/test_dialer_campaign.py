"""A real campaign in the lab: one contact per callee behaviour, each ends with its outcome, and
every retry lands when the campaign's rule says, measured on the dialer's own (scaled) clock.

The dialer's clock runs SCALE times faster than the wall clock, so a 1-minute retry delay passes in
a few seconds while Asterisk's calls take their real time. Lab on its own ports (slot "dialer_campaign", tests/lab.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.models import Attempt, Campaign, Contact, ContactState, DncGlobal
from tests.conftest import on_database
from tests.lab import lab_ports, private_lab
from tests.utils.clock import ScaledClock
from warmline.demo_campaign import behaviours, create_demo_campaign, outcome_table, run_campaign

pytestmark = pytest.mark.integration

PORTS = lab_ports("dialer_campaign")
SCALE = 6.0  # dialer seconds per wall-clock second
RETRY_MINUTES = 1.0
# Every callee behaviour but 9's (talks a minute, presses nothing): through the flow that is callee
# 1's branch (no_input), and it would double the test's time; `make demo` dials it, and
# tests/integration/test_lab.py proves its talk and recording.
DIGITS = "012345678"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("dialer-campaign") / "var", PORTS) as settings:
        yield settings


@on_database("postgresql")
def test_every_behaviour_ends_with_its_outcome_and_retries_on_time(lab: Settings, db: Database) -> None:
    settings = lab.model_copy(update={"database_url": db.url, "dialer_ring_timeout": 12})
    name = "lab-every-behaviour"
    # Two calls a second, as a real campaign paces them: AMD listens to every answered call in real
    # time, and ten answering in one instant on a busy 2-core machine can starve it of frames.
    made = create_demo_campaign(db, name, 1, DIGITS, retry_seconds=int(RETRY_MINUTES * 60), cps=2)
    assert made == len(DIGITS)
    clock = ScaledClock(SCALE)
    asyncio.run(run_campaign(settings, db, name, now=clock, out=None, limit_seconds=400))

    # No agent signs in here (the demo's own run adds one): callee 6 ends abandoned.
    rows = {r["digit"]: r for r in outcome_table(db, name, agent=False)}
    wrong = {d: r["outcome"] for d, r in rows.items() if not r["match"]}
    assert wrong == {}, (
        wrong,
        amd_verdicts(db, name),
    )  # AMD's verdict and cause say why (run 4: 0 as a machine)
    for digit, (_behaviour, expected) in behaviours(agent=False).items():
        if digit in DIGITS:
            assert rows[digit]["outcome"] in expected
    # Final outcomes stop at once; retryable ones (abandoned too) use both attempts (max_attempts 2).
    for digit in "057":
        assert rows[digit]["attempts"] == 1, rows[digit]
    for digit in "123468":
        assert rows[digit]["attempts"] == 2, rows[digit]

    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        attempts = list(
            session.scalars(
                select(Attempt)
                .where(Attempt.campaign_id == campaign.id)
                .order_by(Attempt.contact_id, Attempt.attempt_no)
            )
        )
        contacts = {
            c.id: c for c in session.scalars(select(Contact).where(Contact.campaign_id == campaign.id))
        }
        # The ledger and the contacts agree: every attempt counted once, all closed.
        assert sum(c.attempts for c in contacts.values()) == len(attempts)
        assert all(a.state.value == "ended" and a.outcome for a in attempts)
        assert all(c.state in (ContactState.done, ContactState.exhausted) for c in contacts.values())
        # Retries: never before the rule's delay from the end of the previous attempt (how soon
        # after is the fake-Asterisk tests' to show, on a virtual clock).
        by_contact: dict[int, list[Attempt]] = {}
        for a in attempts:
            by_contact.setdefault(a.contact_id, []).append(a)
        for contact_attempts in by_contact.values():
            for before, after in itertools.pairwise(contact_attempts):
                assert before.ended_at is not None
                due = before.ended_at + timedelta(minutes=RETRY_MINUTES)
                assert after.created_at >= due
        # The opt-out is on the global do-not-call list.
        opted = next(c for c in contacts.values() if c.phone_e164.endswith("7"))
        assert session.scalar(select(DncGlobal).where(DncGlobal.phone_e164 == opted.phone_e164)) is not None
        # The machine got the message, after AMD said MACHINE; people were HUMAN.
        machine = next(a for a in attempts if contacts[a.contact_id].phone_e164.endswith("5"))
        assert machine.amd_status == "MACHINE"
        confirmed = next(a for a in attempts if contacts[a.contact_id].phone_e164.endswith("0"))
        assert confirmed.amd_status == "HUMAN" and confirmed.digits == "1"
        busy = [a for a in attempts if contacts[a.contact_id].phone_e164.endswith("3")]
        assert [a.hangup_cause for a in busy] == [17, 17]


def amd_verdicts(db: Database, name: str) -> list[tuple[str, str | None, object]]:
    """(number's last digit, AMD's status, its cause) of every attempt: for a failure's message."""
    with db.session() as session:
        rows = session.execute(
            select(Contact.phone_e164, Attempt.amd_status, Attempt.detail)
            .join(Attempt, Attempt.contact_id == Contact.id)
            .join(Campaign, Campaign.id == Contact.campaign_id)
            .where(Campaign.name == name)
        ).all()
    return [(phone[-1], status, (detail or {}).get("amd_cause")) for phone, status, detail in rows]
