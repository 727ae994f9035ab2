"""`make demo`: the lab, the service, and accounts to sign in with."""

from __future__ import annotations

import asyncio

from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.secrets import get_secret
from core.settings import Settings
from warmline import accounts
from warmline.lab import lab_start

DEMO_USERS = (("admin", Role.admin), ("agent1", Role.agent), ("manager1", Role.manager), ("qa1", Role.qa))


def ensure_demo_users(settings: Settings, db: Database) -> str:
    """Create each demo user once, with a generated password kept in var/secrets.json (0600)."""
    for name, role in DEMO_USERS:
        password = get_secret(settings.var_dir, f"demo_password_{name}")
        with db.session() as session:
            exists = auth.get_user(session, name) is not None
        if not exists:
            asyncio.run(accounts.add_user(settings, db, name, role, password, actor="demo"))
    return get_secret(settings.var_dir, "demo_password_admin")


def prepare_demo(settings: Settings, db: Database) -> str:
    lab = lab_start(settings)
    password = ensure_demo_users(settings, db)
    url = f"http://{settings.api_host}:{settings.api_port}/console"
    return (
        f"lab: Asterisk {lab.asterisk_version} running, ARI {lab.ari_url}, SIP {lab.sip_host}:{lab.sip_port}\n"
        f"console: {url}  (sign in as admin / {password}; other demo users' passwords are in "
        f"{settings.var_dir / 'secrets.json'})"
    )
