"""Which outside numbers an inbound line's calls may be transferred to, checked when dialled.

A line lists them by name in its settings (``transfer_numbers`` in ``config/inbound/*.yaml``, e.g.
the district's civil affairs office for a 12345 call that belongs there); an agent asks for one by
its name or its number, and nothing else may be dialled -- an inbound line has no typed numbers.
Never a number on the global do-not-call list. The call's process asks through the gate
(agents.handover's ``number_gate``) when the agent starts the transfer; a refusal ends up on the
transfer's row with its code (``not_allowed``, ``invalid_number``, ``dnc``) and the agent hears why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.handover.call import NumberGate
from agents.transfer.service import TransferRefused
from core.db import Database
from core.i18n import _
from core.settings import AsteriskNode
from dialer.engine.calls import endpoint_for
from dialer.models import DncGlobal
from hotline.config import line_number


def check_line_number(
    session: Session, numbers: Mapping[str, str], wanted: str, *, region: str = "CN"
) -> str:
    """The E.164 number ``wanted`` (a listed name or number) stands for, if the line allows it."""
    if not numbers:
        raise TransferRefused(409, "not_allowed", _("This line allows no transfers to outside numbers."))
    found = line_number(numbers.get(wanted.strip(), wanted), region)
    if found is None:
        raise TransferRefused(422, "invalid_number", _("That is not a phone number."), field="target")
    if found not in {line_number(n, region) for n in numbers.values()}:
        raise TransferRefused(409, "not_allowed", _("This line does not allow transfers to that number."))
    if session.scalar(select(DncGlobal.id).where(DncGlobal.phone_e164 == found).limit(1)) is not None:
        raise TransferRefused(409, "dnc", _("That number is on a do-not-call list."))
    return found


def line_gate(
    db: Database, node: AsteriskNode | None, numbers: Mapping[str, str], *, region: str = "CN"
) -> NumberGate | None:
    """The gate for one line's calls on one node (None: the line lists no outside numbers)."""
    if node is None or not numbers:
        return None
    listed = dict(numbers)

    async def gate(call_ref: str, wanted: str) -> str:
        def check() -> str:
            with db.session() as session:
                return check_line_number(session, listed, wanted, region=region)

        return endpoint_for(node.dial_template, await asyncio.to_thread(check))

    return gate
