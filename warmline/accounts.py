"""Adding and disabling users across features: the account (core), its SIP endpoint (agents).

Shared by the CLI and the API so both do exactly the same thing, in one transaction, then push the
endpoints to Asterisk after the commit (Asterisk must never see an endpoint the database does not).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agents.service import ensure_sip_account, sync_endpoints
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings


@dataclass(frozen=True)
class AccountChange:
    name: str
    role: Role
    disabled: bool
    sip_endpoint: str | None
    sync: dict[str, str]


async def add_user(
    settings: Settings,
    db: Database,
    name: str,
    role: Role,
    password: str,
    *,
    actor: str,
    display_name: str | None = None,
    language: str | None = None,
) -> AccountChange:
    def create() -> str | None:
        with db.session() as session:
            user = auth.create_user(
                session, name, role, password, actor=actor, display_name=display_name, language=language
            )
            account = ensure_sip_account(session, user, actor=actor)
            return account.endpoint if account else None

    endpoint = await asyncio.to_thread(create)  # argon2 and the database: off the event loop
    return AccountChange(name, role, False, endpoint, await _sync(settings, db, role))


async def disable_user(settings: Settings, db: Database, name: str, *, actor: str) -> AccountChange:
    def disable() -> Role:
        with db.session() as session:
            return auth.disable_user(session, name, actor=actor).role

    role = await asyncio.to_thread(disable)
    return AccountChange(name, role, True, None, await _sync(settings, db, role))


async def _sync(settings: Settings, db: Database, role: Role) -> dict[str, str]:
    if role is not Role.agent:
        return {}
    return await sync_endpoints(settings, db)
