"""Sign-in security through the real service: two `warmline up` processes (as two workers behind
one address) on one database. Failures counted by one lock the account in the other; behind a
trusted proxy that says HTTPS, the session cookies are Secure and HSTS is sent; the health detail
and the API docs are not shown to anyone who asks. (The wait, on an injected clock, is in
tests/unit/test_sign_in_security.py: a separate process cannot share a test's clock.)"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.auth import service
from core.auth.models import Role
from core.db import Database
from tests.utils import PASSWORD, free_port, until

ROOT = Path(__file__).resolve().parents[2]
WARMLINE = Path(sys.executable).with_name("warmline")


class Service:
    """`warmline up` in a process of its own, on this test's database."""

    def __init__(self, db_url: str, var: Path) -> None:
        self.port = free_port()
        self.topic_prefix = f"warmline-test-{uuid.uuid4().hex[:8]}"  # tests never hear each other
        env = os.environ | {
            "WARMLINE_DATABASE_URL": db_url,
            "WARMLINE_VAR_DIR": str(var),
            "WARMLINE_DIALER_ENABLED": "false",
            "WARMLINE_TOPIC_PREFIX": self.topic_prefix,
            "WARMLINE_ASTERISK_NODES": json.dumps(
                [{"name": "nowhere", "ari_url": "http://127.0.0.1:9/ari", "ari_password": "x"}]
            ),
            "WARMLINE_TRUSTED_PROXIES": '["127.0.0.1"]',  # as if a reverse proxy ran on this host
        }
        self.log = (var / f"up-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(WARMLINE), "up", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        try:
            return httpx.get(self.url + "/livez", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert self.proc.poll() is None, "warmline up exited"
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def services(db_url: str, db: Database, tmp_path: Path) -> Iterator[tuple[Service, Service]]:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        service.create_user(s, "root", Role.admin, PASSWORD, actor="test")
    started: list[Service] = []
    try:
        for name in ("a", "b"):
            var = tmp_path / name
            var.mkdir()
            started.append(Service(db_url, var))
        for svc in started:
            asyncio.run(until(svc.answers, timeout=90, what=f"warmline up on {svc.port}"))
        yield started[0], started[1]
    finally:
        for svc in started:
            svc.stop()


# What these requests prove is the answer, not its speed: a loaded machine (load 10-20, eight
# workers beside other jobs) took longer than httpx's 5 s default to answer one.
TIMEOUT = 30.0
get = functools.partial(httpx.get, timeout=TIMEOUT)
post = functools.partial(httpx.post, timeout=TIMEOUT)


def token(url: str, name: str, password: str, **headers: str) -> httpx.Response:
    return post(f"{url}/api/auth/token", json={"username": name, "password": password}, headers=headers)


def test_the_throttle_and_the_headers_in_the_real_service(services: tuple[Service, Service]) -> None:
    a, b = services
    assert [token(a.url, "mei", "not the password").status_code for _ in range(5)] == [401] * 5
    locked = token(b.url, "mei", PASSWORD)
    assert locked.status_code == 429, "the other process knows: the counts are in the database"
    assert int(locked.headers["retry-after"]) > 0
    assert locked.json()["detail"]["code"] == "too_many_attempts"
    assert token(b.url, "root", "x" * 300).json()["detail"]["code"] == "password_too_long"

    # Behind the (trusted) proxy on this host, which says the browser came over HTTPS.
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    form = {"username": "root", "password": PASSWORD}
    signed = post(f"{b.url}/login", data=form, headers=https)
    assert signed.status_code == 303
    cookies = signed.headers.get_list("set-cookie")
    assert cookies and all("secure" in c.lower() for c in cookies)
    assert signed.headers["strict-transport-security"].startswith("max-age=")
    assert "script-src 'self'" in signed.headers["content-security-policy"]
    assert "server" not in signed.headers, "no Server header naming the software"

    anonymous = get(f"{a.url}/healthz")
    assert anonymous.json() == {"ok": False, "status": "degraded"}, (
        "no errors, no versions for anyone who asks"
    )
    assert get(f"{a.url}/openapi.json").status_code == 401
    assert get(f"{a.url}/docs").headers["location"].startswith("/login")
    admin = {"Authorization": "Bearer " + token(a.url, "root", PASSWORD).json()["access_token"]}
    detail = get(f"{a.url}/healthz", headers=admin).json()
    assert detail["database"]["ok"] is True and "nowhere" in detail["asterisk"]
    assert "/api/auth/token" in get(f"{a.url}/openapi.json", headers=admin).json()["paths"]
