"""Elder-welfare escalation: raise, acknowledge and resolve alerts, every step audited.

The dialer raises an alert inside its own transaction (the attempt's close), so the alert lands
if and only if the attempt's outcome does. The new row is also the pending notice: the notifier in
:mod:`dialer.welfare.events` finds it after the commit and tells people (bus event, webhook), so no
notice is lost, and the console lists the alert whatever became of the notifications.

States: ``open`` -> ``acknowledged`` -> ``resolved`` (``open`` -> ``resolved`` is allowed too: a
supervisor who settles it at once need not acknowledge first). Raising the same kind for the same
contact again while one is unresolved returns the existing alert (a partial unique index enforces
it on both databases).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import audit
from core.db import utcnow
from core.phones import mask
from dialer.models import Campaign, Contact
from dialer.welfare.models import Alert, AlertState

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "dialer"
MAX_NOTE = 2000


class AlertError(ValueError):
    """A transition that is not allowed (the message says which and why)."""


class AlertNotFound(LookupError):
    pass


def _unresolved(session: Session, contact_id: int | None, kind: str) -> Alert | None:
    if contact_id is None:
        return None
    return session.scalar(
        select(Alert).where(
            Alert.contact_id == contact_id, Alert.kind == kind, Alert.state != AlertState.resolved
        )
    )


def raise_alert(
    session: Session,
    *,
    campaign: Campaign | None,
    contact: Contact | None,
    attempt_id: str | None,
    kind: str,
    detail: dict[str, Any] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> Alert:
    """Open an alert for the contact (idempotent per contact and kind while unresolved)."""
    kind = (kind or "other").strip()[:32] or "other"
    contact_id = contact.id if contact is not None else None
    existing = _unresolved(session, contact_id, kind)
    if existing is not None:
        return existing
    alert = Alert(
        campaign_id=campaign.id if campaign is not None else None,
        contact_id=contact_id,
        attempt_id=attempt_id,
        kind=kind,
        state=AlertState.open,
        phone_masked=mask(contact.phone_e164) if contact is not None else "",
        contact_name=contact.name if contact is not None else None,
        campaign_name=campaign.name if campaign is not None else None,
        detail=_safe_detail(detail or {}),
        created_at=utcnow(),
    )
    if session.get_bind().dialect.name != "postgresql":
        # SQLite has one writer at a time, and pysqlite's SAVEPOINT would commit early.
        session.add(alert)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(alert)
                session.flush()
        except IntegrityError:
            # Raised concurrently by another worker: theirs stands.
            existing = _unresolved(session, contact_id, kind)
            if existing is None:
                raise
            return existing
    audit(
        session,
        actor,
        "welfare.alert.raise",
        f"alert:{alert.id}",
        kind=kind,
        campaign=alert.campaign_name,
        contact_id=contact_id,
        attempt_id=attempt_id,
    )
    log.info("welfare alert %s (%s) for contact %s", alert.id, kind, contact_id)
    return alert


def _safe_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail as stored: JSON-safe, numbers masked wherever a key says phone."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if "phone" in key.lower() and isinstance(value, str):
            out[key] = mask(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, str | int | float | bool) else str(v) for v in value]
        elif isinstance(value, dict):
            out[key] = _safe_detail(value)
        else:
            out[key] = str(value)
    return out


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(f"no welfare alert {alert_id}")
    return alert


def acknowledge(session: Session, alert_id: int, *, actor: str, note: str | None = None) -> Alert:
    """A supervisor has seen the alert and is acting on it."""
    alert = get_alert(session, alert_id)
    if alert.state is AlertState.acknowledged:
        return alert
    if alert.state is AlertState.resolved:
        raise AlertError(f"alert {alert_id} is already resolved (by {alert.resolved_by})")
    alert.state = AlertState.acknowledged
    alert.acknowledged_by = actor
    alert.acknowledged_at = utcnow()
    audit(session, actor, "welfare.alert.acknowledge", f"alert:{alert.id}", note=(note or "")[:MAX_NOTE])
    return alert


def resolve(session: Session, alert_id: int, *, actor: str, resolution: str) -> Alert:
    """The elder has been reached or helped; ``resolution`` says how (required)."""
    text = (resolution or "").strip()
    if not text:
        raise AlertError("say how the alert was resolved (the resolution note is required)")
    if len(text) > MAX_NOTE:
        raise AlertError(f"the resolution note is {len(text)} characters; at most {MAX_NOTE}")
    alert = get_alert(session, alert_id)
    if alert.state is AlertState.resolved:
        raise AlertError(f"alert {alert_id} is already resolved (by {alert.resolved_by})")
    now = utcnow()
    if alert.acknowledged_at is None:
        alert.acknowledged_by = actor
        alert.acknowledged_at = now
    alert.state = AlertState.resolved
    alert.resolved_by = actor
    alert.resolved_at = now
    alert.resolution = text
    audit(session, actor, "welfare.alert.resolve", f"alert:{alert.id}", resolution=text)
    return alert


def list_alerts(
    session: Session,
    *,
    states: Sequence[AlertState] | None = None,
    campaign_id: int | None = None,
    since_id: int | None = None,
    limit: int = 200,
) -> list[Alert]:
    """Newest first; ``states`` None means every state."""
    stmt = select(Alert)
    if states:
        stmt = stmt.where(Alert.state.in_(list(states)))
    if campaign_id is not None:
        stmt = stmt.where(Alert.campaign_id == campaign_id)
    if since_id is not None:
        stmt = stmt.where(Alert.id > since_id)
    return list(session.scalars(stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Alert.state, func.count()).group_by(Alert.state)).all()
    out = {s.value: 0 for s in AlertState}
    for state, n in rows:
        out[AlertState(state).value] = int(n)
    return out


def describe(alert: Alert) -> dict[str, Any]:
    """What the API and the console show (masked number only)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": alert.id,
        "kind": alert.kind,
        "state": alert.state.value,
        "campaign": alert.campaign_name,
        "campaign_id": alert.campaign_id,
        "contact_id": alert.contact_id,
        "contact_name": alert.contact_name,
        "phone": alert.phone_masked,
        "attempt_id": alert.attempt_id,
        "detail": alert.detail,
        "created_at": iso(alert.created_at),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_by": alert.resolved_by,
        "resolved_at": iso(alert.resolved_at),
        "resolution": alert.resolution,
        "webhook": alert.webhook_status,
    }


KIND_TEXT = {
    "unreached": "not reached after every attempt",
    "help": "asked for help",
    "no_input": "answered but pressed no key",
    "overtime_near": "is near overtime",
}


def summary_text(alert: Alert) -> str:
    """One sentence for a screen reader: who, what, where."""
    agent = alert.detail.get("agent") if alert.contact_id is None else None
    who = alert.contact_name or (f"Agent {agent}" if agent else "A contact")
    what = KIND_TEXT.get(alert.kind, alert.kind.replace("_", " "))
    where = f" ({alert.campaign_name})" if alert.campaign_name else ""
    phone = f" {alert.phone_masked}," if alert.phone_masked else ""
    return f"{who},{phone} {what}{where}."
