"""The softphone's client of the warmline server: sign-in, SIP credentials, hours, state, quality,
and the calls the agent places (preview, callbacks).

The agent types only their warmline password, once; it is exchanged for a bearer token and then
forgotten. The SIP password comes from `/api/agents/me/sip` and lives only in memory (in the
`SipAccountSettings` handed to the engine): nothing is written to disk.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal, cast
from urllib.parse import quote

import httpx

from core.i18n import HTML_LANG, _, current_locale
from softphone.account import SipAccountSettings, Srtp, Transport


class ProvisioningError(RuntimeError):
    """The server refused or could not be reached; the message says which, for the agent.
    `status` is the HTTP status (None: not reached), `detail` the server's own words."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.errors = errors or {}  # form question key -> the server's sentence (a 422)


class ServerClient:
    def __init__(
        self, base_url: str, *, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user: str | None = None
        self._token: str | None = None
        self.codecs: list[str] = []
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        if self._token is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self._http.post("/api/auth/logout", headers=self._auth())
        self._token = None
        await self._http.aclose()

    def _auth(self) -> dict[str, str]:
        # The server's messages (a refused dial, say) come in the phone's language.
        language = {"Accept-Language": HTML_LANG[current_locale()]}
        return {"Authorization": f"Bearer {self._token}", **language} if self._token else language

    @property
    def signed_in(self) -> bool:
        return self._token is not None

    async def _call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        try:
            resp = await self._http.request(method, path, headers={**self._auth(), **(headers or {})}, **kw)
        except httpx.TimeoutException as exc:
            # httpx's timeouts carry no text: say what happened rather than "cannot reach: ".
            raise ProvisioningError(
                _("the server at {url} did not answer in time ({path})", url=self.base_url, path=path)
            ) from exc
        except httpx.HTTPError as exc:
            raise ProvisioningError(
                _("cannot reach the server at {url}: {error}", url=self.base_url, error=exc)
            ) from exc
        code = resp.status_code
        if code == 401 and path == "/api/auth/token":
            raise ProvisioningError(
                _("the server did not accept the sign-in (wrong user name or password?)"), status=code
            )
        if code == 401:
            raise ProvisioningError(
                _("the server ended this session (signed out elsewhere?); sign in again"), status=code
            )
        if code >= 400:
            detail = _detail(resp)
            raise ProvisioningError(
                _(
                    "server: {method} {path} failed ({code}): {detail}",
                    method=method,
                    path=path,
                    code=code,
                    detail=detail,
                ),
                status=code,
                detail=detail,
                errors=_answer_errors(resp),
            )
        return resp.json() if resp.content else None

    async def login(self, user: str, password: str) -> None:
        body = await self._call("POST", "/api/auth/token", json={"username": user, "password": password})
        self._token = str(body["access_token"])
        self.user = user

    async def sip_account(
        self, *, srtp: Literal["off", "optional", "mandatory"] | None = None
    ) -> SipAccountSettings:
        """The SIP account the server provisions; `srtp` None: what the server requires."""
        data = await self._call("GET", "/api/agents/me/sip")
        transport = str(data.get("transport", "udp")).lower()
        if transport not in ("udp", "tcp", "tls"):
            raise ProvisioningError(
                _("server offered SIP transport {transport}; expected udp, tcp or tls", transport=transport)
            )
        self.codecs = [str(c) for c in data.get("codecs", [])]
        if srtp is None:
            offered = str(data.get("srtp") or "off")
            srtp = cast(Srtp, offered if offered in ("off", "optional", "mandatory") else "mandatory")
        return SipAccountSettings(
            username=str(data["username"]),
            password=str(data["password"]),
            registrar=str(data["registrar"]),
            realm=str(data.get("realm") or "*"),
            transport=cast(Transport, transport),
            srtp=srtp,
            display_name=self.user,
            ca_pem=str(data["ca_pem"]) if data.get("ca_pem") else None,
        )

    async def hours(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._call("GET", "/api/agents/me/hours"))

    async def my_day(self) -> dict[str, Any]:
        """Today's shift-day: hours by shift, night, calls, talk, the daily target, overtime."""
        return cast(dict[str, Any], await self._call("GET", "/api/workforce/my-day"))

    async def practice_scenarios(self) -> list[dict[str, Any]]:
        """The practice scenarios (name, title in my language, description), in the server's order."""
        return [dict(s) for s in await self._call("GET", "/api/practice/scenarios")]

    async def start_practice(self, scenario: str) -> dict[str, Any]:
        """Ring my own phone with a simulated caller; the answer says what to do."""
        body = await self._call("POST", "/api/agents/me/practice", json={"scenario": scenario})
        return cast(dict[str, Any], body)

    async def my_cooldown(self) -> dict[str, Any]:
        """My cool-down now: ``remaining_s``, ``reason``, ``cooldown_until`` (nulls when none)."""
        return cast(dict[str, Any], await self._call("GET", "/api/agents/me/cooldown"))

    async def set_state(self, state: str, reason: str | None) -> dict[str, Any]:
        body = await self._call("POST", "/api/agents/me/state", json={"state": state, "reason": reason})
        return cast(dict[str, Any], body)

    async def post_wrapup(self, record: dict[str, Any]) -> dict[str, Any]:
        """The agent's wrap-up of a call; the server stores it and says what it did."""
        return cast(dict[str, Any], await self._call("POST", "/api/agents/me/wrapup", json=record))

    async def dispositions(self, campaign: str | None) -> list[dict[str, Any]]:
        """The wrap-up choices of a campaign, key 1 first (the server's defaults without one)."""
        params = {"campaign": campaign} if campaign else {}
        body = await self._call("GET", "/api/agents/me/dispositions", params=params)
        return [dict(d) for d in body["dispositions"]]

    async def screen_pops(self, after: int | None, *, wait: float) -> dict[str, Any]:
        """Nailed calls' screen pops after ``after`` (a long poll held up to ``wait`` seconds):
        ``{"pops": [{"seq", "kind", "attempt", "campaign", "fields"}], "last": n}``."""
        params: dict[str, Any] = {"wait": wait} | ({"after": after} if after is not None else {})
        timeout = httpx.Timeout(10.0, read=wait + 10.0)  # the server holds the answer back
        body = await self._call("GET", "/api/agents/me/screen-pops", params=params, timeout=timeout)
        return cast(dict[str, Any], body)

    async def call_script(self, call_ref: str, ticket: str | None) -> dict[str, Any]:
        """The call's screen pop fields, script (HTML), form and the answers saved so far."""
        headers = {"X-Warmline-Ticket": ticket} if ticket else {}
        path = f"/api/agents/me/calls/{quote(call_ref, safe='')}/script"
        return cast(dict[str, Any], await self._call("GET", path, headers=headers))

    async def save_form(
        self, call_ref: str, ticket: str | None, answers: dict[str, Any], *, complete: bool
    ) -> dict[str, Any]:
        """Save the call's form; a 422 names each failing question (ProvisioningError.errors)."""
        headers = {"X-Warmline-Ticket": ticket} if ticket else {}
        path = f"/api/agents/me/calls/{quote(call_ref, safe='')}/form"
        body = {"answers": answers, "complete": complete}
        return cast(dict[str, Any], await self._call("PUT", path, json=body, headers=headers))

    async def post_quality(self, report: dict[str, Any]) -> None:
        await self._call("POST", "/api/agents/me/quality", json=report)

    # -- calls the agent places (preview, callbacks); the server rings the agent's phone first

    async def preview(self) -> dict[str, Any]:
        """``{"contact": {...} | None, "message"}``: the contact reserved to me now, if any."""
        return cast(dict[str, Any], await self._call("GET", "/api/agents/me/preview"))

    async def skip_preview(self, contact_id: int, reason: str, note: str | None = None) -> dict[str, Any]:
        body = {"contact_id": contact_id, "reason": reason, "note": note}
        return cast(dict[str, Any], await self._call("POST", "/api/agents/me/preview/skip", json=body))

    async def callbacks(self) -> list[dict[str, Any]]:
        return [dict(c) for c in await self._call("GET", "/api/agents/me/callbacks")]

    async def dial(self, contact_id: int) -> dict[str, Any]:
        """Ask the server to place a call to a contact shown to me (or my callback): ``call_ref``…"""
        body = {"contact_id": contact_id}
        return cast(dict[str, Any], await self._call("POST", "/api/agents/me/dial", json=body))

    async def transfer_targets(self) -> dict[str, Any]:
        """Whom my call may go to: ``colleagues`` (with their state) and skill ``queues``."""
        return cast(dict[str, Any], await self._call("GET", "/api/agents/me/transfer-targets"))

    async def start_transfer(self, call_ref: str, kind: str, target: str, mode: str) -> dict[str, Any]:
        body = {"call_ref": call_ref, "kind": kind, "target": target, "mode": mode}
        return cast(dict[str, Any], await self._call("POST", "/api/agents/me/transfers", json=body))

    async def transfer(self, transfer_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._call("GET", f"/api/agents/me/transfers/{transfer_id}"))

    async def transfer_step(self, transfer_id: str, step: str) -> dict[str, Any]:
        """``complete`` (join the caller and the target) or ``cancel`` (back to the caller)."""
        path = f"/api/agents/me/transfers/{transfer_id}/{step}"
        return cast(dict[str, Any], await self._call("POST", path))

    # -- help in a hard call

    async def ask_help(self, call_ref: str) -> dict[str, Any]:
        """The help key: the server stores it and alerts supervisors; ``message`` says so."""
        body = {"call_ref": call_ref}
        return cast(dict[str, Any], await self._call("POST", "/api/agents/me/help", json=body))

    async def end_abusive(self, call_ref: str) -> dict[str, Any]:
        """Flag the call as abusive: the server ends it courteously; ``message`` is my cool-down."""
        path = f"/api/agents/me/calls/{quote(call_ref, safe='')}/abusive"
        return cast(dict[str, Any], await self._call("POST", path))


def _answer_errors(resp: httpx.Response) -> dict[str, str]:
    """A 422's failing form questions: `loc` body, answers, KEY -> its message."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return {}
    out: dict[str, str] = {}
    for item in detail if isinstance(detail, list) else []:
        loc = item.get("loc") if isinstance(item, dict) else None
        if isinstance(loc, list) and len(loc) >= 3 and loc[:2] == ["body", "answers"]:
            out[str(loc[2])] = str(item.get("msg", ""))
    return out


def _detail(resp: httpx.Response) -> str:
    """The server's reason in words: FastAPI's `detail` (a text, or a list of field errors)."""
    try:
        detail = resp.json().get("detail", resp.text)
    except (ValueError, AttributeError):
        return resp.text
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", "")))
        return "; ".join(parts) or resp.text
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    return str(detail)
