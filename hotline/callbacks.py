"""Callback requests left on the hotline, kept as contacts of a callback campaign (an agent
campaign, created as a draft on first use), so the dialer calls them back."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.db import utcnow
from core.phones import mask
from dialer import campaigns
from dialer.lists.phones import normalise
from dialer.models import Campaign, Contact, ContactState

log = logging.getLogger(__name__)

CALLBACK_ACTOR = "inbound"


def record_callback(
    session: Session,
    *,
    campaign_name: str,
    phone: str | None,
    hotline: str,
    reason: str,
    message: str | None = None,
    region: str = "CN",
) -> int | None:
    """Keep a callback request as a pending contact of ``campaign_name`` (created on demand: an
    agent campaign, draft). Returns the contact id, or None when the caller's number is unusable
    (withheld or not a phone number) -- logged, and audited so a supervisor can see it."""
    parsed = normalise(phone or "", region=region, allowed=None)
    campaign = session.scalar(select(Campaign).where(Campaign.name == campaign_name))
    if campaign is None:
        spec = campaigns.build_spec(
            {
                "name": campaign_name,
                "kind": "agent",
                "description": "Callback requests left on the inbound hotline",
            }
        )
        campaign = campaigns.create_campaign(session, spec, actor=CALLBACK_ACTOR)
    if parsed.e164 is None:
        audit(
            session,
            CALLBACK_ACTOR,
            "inbound.callback.unusable",
            campaign_name,
            hotline=hotline,
            reason=reason,
        )
        log.warning("callback request on %s without a usable caller number (%s)", hotline, parsed.reason)
        return None
    now = utcnow()
    fields = {"hotline": hotline, "reason": reason, "requested_at": now.isoformat(timespec="seconds")}
    if message:
        fields["message"] = message
    contact = session.scalar(
        select(Contact).where(Contact.campaign_id == campaign.id, Contact.phone_e164 == parsed.e164)
    )
    if contact is None:
        contact = Contact(
            campaign_id=campaign.id,
            phone_e164=parsed.e164,
            name=None,
            fields=fields,
            state=ContactState.pending,
            next_due_at=now,
        )
        session.add(contact)
    else:  # asked again: one contact, due now, the latest request's details
        contact.fields = {**(contact.fields or {}), **fields}
        if contact.state is not ContactState.in_progress:
            contact.state = ContactState.pending
            contact.next_due_at = now
    session.flush()
    audit(
        session,
        CALLBACK_ACTOR,
        "inbound.callback",
        f"contact:{contact.id}",
        campaign=campaign_name,
        phone=mask(parsed.e164),
        reason=reason,
    )
    return int(contact.id)
