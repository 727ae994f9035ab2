"""API fuzz: schemathesis generates requests from the service's own OpenAPI document, valid and
invalid, for every operation, sent as an administrator and as an agent; no answer may be a 5xx.

    make bench                                        # or: pytest -m bench -s tests/bench/test_api_fuzz.py
    WARMLINE_FUZZ_EXAMPLES=200 pytest -m bench -s tests/bench/test_api_fuzz.py

The requests go through a TestClient of the real app (its lifespan, workers and bus running) on
a real database of each kind; schemathesis only makes the cases. A 5xx is reported with the
operation and a curl line that repeats it; the run prints how many requests each mode sent.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from tests.utils import PASSWORD, login
from warmline.app import create_app

pytestmark = pytest.mark.bench
EXAMPLES = int(os.environ.get("WARMLINE_FUZZ_EXAMPLES", "25"))
# Operations that end the fuzzer's own session: fuzzed, they would only turn later cases into 401s.
SPARED = {("POST", "/api/auth/logout"), ("PATCH", "/api/users/{name}"), ("POST", "/api/users/{name}/disable")}


def _request(client: TestClient, kwargs: dict[str, Any], auth_headers: dict[str, str]) -> int:
    """Send one generated case (requests-style arguments) through the TestClient (httpx)."""
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
    headers.update(auth_headers)
    send: dict[str, Any] = {
        "params": kwargs.get("params"),
        "headers": headers,
        "cookies": kwargs.get("cookies"),
    }
    if "json" in kwargs:
        send["json"] = kwargs["json"]
    if "files" in kwargs:
        send["files"] = kwargs["files"]
    data = kwargs.get("data")
    if isinstance(data, dict):
        send["data"] = data
    elif data is not None:
        send["content"] = data if isinstance(data, bytes) else str(data).encode()
    status: int = client.request(kwargs["method"], kwargs["url"], **send).status_code
    return status


def run_cases(
    client: TestClient,
    op: Any,
    mode: schemathesis.GenerationMode,
    identities: dict[str, dict[str, str]],
    sent: Counter[str],
    errors: list[str],
) -> None:
    """EXAMPLES generated requests to one operation in one mode; a 5xx is noted, not raised."""
    strategy = st.tuples(op.as_strategy(generation_mode=mode), st.sampled_from(sorted(identities)))

    @given(strategy)
    @fuzz_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def fuzz(drawn: tuple[Any, str]) -> None:
        case, who = drawn
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        status = _request(client, kwargs, identities[who])
        sent[mode.value] += 1
        if status >= 500 and len(errors) < 50:
            errors.append(f"{status} {op.label} as {who}: {case.as_curl_command()}")

    with contextlib.suppress(Unsatisfiable):  # nothing of this operation can be made invalid
        fuzz()


def test_fuzz_finds_no_server_error(db: Database, settings: Settings) -> None:
    settings.asterisk_nodes = []  # no Asterisk here: /healthz would rightly answer 503
    with db.session() as s:
        auth.create_user(s, "fuzz-admin", Role.admin, PASSWORD, actor="test")
        auth.create_user(s, "fuzz-agent", Role.agent, PASSWORD, actor="test")
    app = create_app(settings, db)
    schema = schemathesis.openapi.from_dict(app.openapi())
    errors: list[str] = []
    sent: Counter[str] = Counter()
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        identities = {"admin": login(client, "fuzz-admin"), "agent": login(client, "fuzz-agent")}
        for result in schema.get_all_operations():
            op = result.ok()  # type: ignore[union-attr]  # an Err raises here: the schema is broken
            if (op.method.upper(), op.path) in SPARED:
                continue
            for mode in schemathesis.GenerationMode:
                run_cases(client, op, mode, identities, sent, errors)
    print(f"\nAPI fuzz: {dict(sent)} requests over {len(list(schema.get_all_operations()))} operations;"
          f" server errors: {len(errors)}")  # fmt: skip
    assert not errors, "\n".join(errors)
