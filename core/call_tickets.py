"""Call tickets: proof that an agent's phone was offered a call, carried in the call's SIP headers.

The hand-over adds ``X-Warmline-Ticket`` to the INVITE it sends one agent. Only that agent's phone
receives it, so the phone may then fetch the call's script and form, and save the form, before
the call is theirs in the database (while it rings) and for calls the database keeps no attempt
for (inbound hotline calls). A ticket names the call, the agent, the campaign or inbound line, and
when it expires; it is signed with a secret of the server's (``var/secrets.json``), so it cannot be
made up or moved to another call or agent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from core.secrets import get_secret

SECRET_NAME = "call_tickets"  # noqa: S105 - the name of the secret, not the secret
TICKET_TTL = timedelta(hours=12)  # long enough for a wrap-up after a long call, short of a day


@dataclass(frozen=True)
class Ticket:
    call_ref: str
    agent: str
    campaign: str | None
    line: str | None
    expires: int  # Unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ticket_secret(var_dir: Path) -> str:
    return get_secret(var_dir, SECRET_NAME, 32)


def mint(
    secret: str,
    *,
    call_ref: str,
    agent: str,
    now: datetime,
    campaign: str | None = None,
    line: str | None = None,
    ttl: timedelta = TICKET_TTL,
) -> str:
    """An ASCII ticket for `agent` on `call_ref`, valid until `now + ttl`."""
    claims = {"c": call_ref, "a": agent, "k": campaign, "l": line, "e": int((now + ttl).timestamp())}
    body = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def verify(secret: str, ticket: str | None, *, call_ref: str, agent: str, now: datetime) -> Ticket | None:
    """The ticket's claims when it is genuine, unexpired and for this call and agent; else None."""
    if not ticket or ticket.count(".") != 1 or len(ticket) > 2000:
        return None
    body, sig = ticket.split(".")
    want = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(want, _unb64(sig)):
            return None
        claims = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    found = Ticket(
        call_ref=str(claims.get("c")),
        agent=str(claims.get("a")),
        campaign=claims.get("k"),
        line=claims.get("l"),
        expires=int(claims.get("e") or 0),
    )
    if found.call_ref != call_ref or found.agent != agent or found.expires < now.timestamp():
        return None
    return found
