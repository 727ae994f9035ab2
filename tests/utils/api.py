"""Signing in to the warmline API, from a FastAPI TestClient or as the softphone does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from softphone.account import SipAccountSettings
    from softphone.provisioning import ServerClient

PASSWORD = "correct horse battery"
"""The password the tests give the users they create, unless a test needs another."""


def login(client: TestClient, name: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign `name` in through `/api/auth/token`; the headers to send with their requests."""
    resp = client.post("/api/auth/token", json={"username": name, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def console_login(client: TestClient, name: str, password: str = PASSWORD) -> httpx.Response:
    """Sign `name` in to the console as a browser does (`POST /login`, the session cookie); from then
    on the client sends the session's CSRF token with every request, as the console's pages do.
    The answer to the sign-in (303 on success), not followed."""
    client.headers.pop("X-CSRF-Token", None)
    resp: httpx.Response = client.post(
        "/login", data={"username": name, "password": password}, follow_redirects=False
    )
    csrf = resp.cookies.get("warmline_csrf")
    if csrf:
        client.headers["X-CSRF-Token"] = csrf
    return resp


async def signed_in(url: str, user: str, password: str = PASSWORD) -> tuple[ServerClient, SipAccountSettings]:
    """Sign in as the agent's softphone does; its server client (close it) and SIP account."""
    from softphone.provisioning import ServerClient  # only the softphone tests pay for this import

    server = ServerClient(url)
    await server.login(user, password)
    return server, await server.sip_account()
