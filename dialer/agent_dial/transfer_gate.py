"""Which outside numbers a campaign's call may be transferred to, checked when it is dialled.

A number the campaign lists in ``transfer_numbers`` (asked for by its name or its number), or --
when the campaign allows typed numbers (``manual_dial``) -- any number it may call; never one on
a do-not-call list, never outside the campaign's calling window. The call's process asks through
the gate (agents.handover's ``number_gate``) when the agent starts the transfer; a refusal ends up
on the transfer's row with its code (``not_allowed``, ``invalid_number``, ``dnc``,
``outside_window``) and the agent hears why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from agents.handover.call import NumberGate
from agents.transfer.service import TransferRefused
from core.db import Database, utcnow
from core.i18n import _
from core.settings import AsteriskNode
from dialer import dnc
from dialer.campaigns import spec_of
from dialer.engine.calls import endpoint_for
from dialer.lists import phones
from dialer.models import Campaign
from dialer.schedule import in_window


def check_transfer_number(
    session: Session, campaign_id: int, wanted: str, now: datetime, *, region: str = "CN"
) -> str:
    """The E.164 number ``wanted`` (a listed name or a number) stands for, if the campaign allows
    transferring to it now; else TransferRefused."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise TransferRefused(409, "not_allowed", _("This call allows no outside transfers."))
    spec = spec_of(campaign)
    countries = frozenset(spec.allowed_countries or ["CN"])

    def e164(text: str) -> str | None:
        return phones.normalise(text, region, countries).e164

    listed = {e164(number) for number in spec.transfer_numbers.values()}
    number = spec.transfer_numbers.get(wanted.strip(), wanted)
    found = e164(number)
    if found is None:
        raise TransferRefused(
            422, "invalid_number", _("Not a number this campaign can call."), field="target"
        )
    if found not in listed and not spec.manual_dial:
        raise TransferRefused(409, "not_allowed", _("This campaign does not allow transfers to that number."))
    if dnc.is_blocked(session, campaign.id, found):
        raise TransferRefused(409, "dnc", _("That number is on a do-not-call list."))
    if not in_window(spec, now):
        raise TransferRefused(409, "outside_window", _("That number may not be called at this hour."))
    return found


def number_gate(
    db: Database,
    node: AsteriskNode,
    campaign_id: int | None,
    *,
    region: str = "CN",
    now: Callable[[], datetime] = utcnow,
) -> NumberGate | None:
    """The gate for one campaign's calls on one node (None: the call has no campaign)."""
    if campaign_id is None:
        return None

    async def gate(call_ref: str, wanted: str) -> str:
        def check() -> str:
            with db.session() as session:
                return check_transfer_number(session, campaign_id, wanted, now(), region=region)

        return endpoint_for(node.dial_template, await asyncio.to_thread(check))

    return gate
