"""A small, typed asyncio client for Asterisk's REST Interface (ARI).

HTTP requests go through httpx; events come over the ``/events`` websocket. The event iterator
survives Asterisk restarts: it reconnects with capped exponential backoff and yields a synthetic
``{"type": "WarmlineReconnected"}`` after every reconnect so callers can reconcile their state
(list channels, finish attempts whose channels vanished).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from core.ari_http import AriHttp, AriHttpError

log = logging.getLogger(__name__)

JSON = dict[str, Any]
ParamValue = str | int | float | bool | Sequence[str] | None

CONNECTED = "WarmlineConnected"
RECONNECTED = "WarmlineReconnected"
# A task following a call is cancelled with this message when another process took the call's Stasis
# app (ApplicationReplaced): the call is the other's now, its cleanup must not touch the channel.
HANDED_OVER = "warmline: call handed over to another worker"


class AriError(Exception):
    """An ARI request failed: HTTP status (0 when Asterisk could not be reached), what and why."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.message = message


def _param(value: str | int | float | bool | Sequence[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return ",".join(value)


def build_params(params: Mapping[str, ParamValue]) -> dict[str, str]:
    """ARI query parameters: None dropped, booleans as true/false, lists comma-joined."""
    return {key: _param(value) for key, value in params.items() if value is not None}


def _error_message(content: bytes, reason: str) -> str:
    text = content.decode("utf-8", "replace").strip()
    try:
        body = json.loads(content)
    except ValueError:
        return text or reason
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return text or reason


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _path(*parts: str) -> str:
    """Join path segments, escaping ids so a stray '/' or '?' cannot change the request."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


class AriClient:
    """ARI over HTTP and websocket for one Asterisk and one Stasis application (its own; another
    app's events can be read too, `events(app=...)`)."""

    # Channel variables every originate of this client sets (the dialer's ``WL_APP``: the dialplan
    # sends the call back into the Stasis app of the worker that placed it).
    originate_variables: Mapping[str, str] = MappingProxyType({})

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str = "warmline",
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.app = app
        self._password = password
        # Requests go through the lean keep-alive client (core/ari_http.py: httpx's per-request work
        # cost more CPU than Asterisk's per call); an injected httpx transport (tests) goes through httpx.
        self._lean = AriHttp(self.base_url, user, password, timeout=timeout)
        self._http: httpx.AsyncClient | None = None
        if transport is not None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, auth=(user, password), timeout=timeout, transport=transport
            )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._lean.close()
        if self._http is not None:
            await self._http.aclose()

    # ------------------------------------------------------------ HTTP

    async def request(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, **params: ParamValue
    ) -> Any:
        """One ARI call; returns the decoded JSON body (None when empty). Raises AriError."""
        query = build_params(params)
        target = path + ("?" + urlencode(query) if query else "")
        content = None if body is None else _json_bytes(body)
        if self._http is None:
            try:
                answer = await self._lean.request(method, target, content)
            except AriHttpError as exc:
                raise AriError(0, method, path, str(exc)) from exc
            status, data, reason = answer.status, answer.body, answer.reason
        else:
            headers = {"Content-Type": "application/json"} if content is not None else None
            try:
                resp = await self._http.request(
                    method, self.base_url + target, content=content, headers=headers
                )
            except httpx.HTTPError as exc:
                raise AriError(0, method, path, f"{type(exc).__name__}: {exc}") from exc
            status, data, reason = resp.status_code, resp.content, resp.reason_phrase
        if status >= 400:
            raise AriError(status, method, path, _error_message(data, reason))
        if not data:
            return None
        return json.loads(data)

    async def info(self) -> JSON:
        result: JSON = await self.request("GET", "/asterisk/info")
        return result

    async def ping(self) -> bool:
        try:
            await self.request("GET", "/asterisk/ping")
        except AriError:
            return False
        return True

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str | None = None,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        variables: Mapping[str, str] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - seconds the callee may ring, an ARI parameter
        caller_id: str | None = None,
        other_channel_id: str | None = None,
    ) -> JSON:
        """Originate a call into the Stasis app (default) or into the dialplan (context/extension)."""
        to_dialplan = context is not None or extension is not None
        params: dict[str, ParamValue] = {
            "endpoint": endpoint,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "timeout": timeout,
            "callerId": caller_id,
        }
        if to_dialplan:
            params.update(context=context, extension=extension, priority=priority or 1)
        else:
            params.update(app=app or self.app, appArgs=app_args)
        merged = {**self.originate_variables, **(variables or {})}
        body = {"variables": merged} if merged else None
        result: JSON = await self.request("POST", "/channels", body=body, **params)
        return result

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", _path("channels", channel_id), reason=reason)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", _path("channels", channel_id, "answer"))

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", _path("channels", channel_id, "ring"))

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        playback_id: str | None = None,
        *,
        lang: str | None = None,
    ) -> JSON:
        """Play media URIs (``sound:warmline/x``, ``recording:…``) on a channel."""
        parts = ("channels", channel_id, "play") + ((playback_id,) if playback_id else ())
        result: JSON = await self.request("POST", _path(*parts), media=media, lang=lang)
        return result

    async def get_playback(self, playback_id: str) -> JSON:
        result: JSON = await self.request("GET", _path("playbacks", playback_id))
        return result

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", _path("playbacks", playback_id))

    async def send_dtmf(self, channel_id: str, dtmf: str, *, between: int | None = None) -> None:
        await self.request("POST", _path("channels", channel_id, "dtmf"), dtmf=dtmf, between=between)

    async def channels(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/channels")
        return result

    async def get_channel(self, channel_id: str) -> JSON:
        result: JSON = await self.request("GET", _path("channels", channel_id))
        return result

    async def find_channel(self, channel_id: str) -> JSON | None:
        """The channel as ARI lists it, or None when Asterisk has no such channel (404)."""
        try:
            return await self.get_channel(channel_id)
        except AriError as exc:
            if exc.status == 404:
                return None
            raise

    async def get_variable(self, channel_id: str, name: str) -> str:
        result: JSON = await self.request("GET", _path("channels", channel_id, "variable"), variable=name)
        return str(result.get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", _path("channels", channel_id, "variable"), variable=name, value=value)

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str = "s", priority: int = 1
    ) -> None:
        """Leave Stasis and run dialplan (e.g. context warmline-amd), which may re-enter Stasis."""
        await self.request(
            "POST",
            _path("channels", channel_id, "continue"),
            context=context,
            extension=extension,
            priority=priority,
        )

    async def snoop(
        self,
        channel_id: str,
        *,
        spy: str = "in",
        whisper: str = "none",
        snoop_id: str | None = None,
        app_args: str | None = None,
    ) -> JSON:
        """A snoop channel on one leg (spy in/out/both) into the app, e.g. to record that leg."""
        parts = ("channels", channel_id, "snoop") + ((snoop_id,) if snoop_id else ())
        result: JSON = await self.request(
            "POST", _path(*parts), spy=spy, whisper=whisper, app=self.app, appArgs=app_args
        )
        return result

    async def record_channel(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_duration: int = 0,
        if_exists: str = "fail",
        beep: bool = False,
        max_silence: int = 0,
        terminate_on: str = "none",
    ) -> JSON:
        """Record what the channel hears from its caller into astspooldir/recording/<name>.<fmt>."""
        return await self._record(
            "channels",
            channel_id,
            name,
            fmt,
            max_duration,
            if_exists,
            beep=beep,
            maxSilenceSeconds=max_silence,
            terminateOn=terminate_on,
        )

    async def create_bridge(
        self, bridge_type: str = "mixing", bridge_id: str | None = None, name: str | None = None
    ) -> JSON:
        result: JSON = await self.request("POST", "/bridges", type=bridge_type, bridgeId=bridge_id, name=name)
        return result

    async def add_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        await self.request("POST", _path("bridges", bridge_id, "addChannel"), channel=channel_id)

    async def remove_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        await self.request("POST", _path("bridges", bridge_id, "removeChannel"), channel=channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", _path("bridges", bridge_id))

    async def bridges(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/bridges")
        return result

    async def get_bridge(self, bridge_id: str) -> JSON:
        result: JSON = await self.request("GET", _path("bridges", bridge_id))
        return result

    async def bridge_of(self, channel_id: str) -> JSON | None:
        """The bridge a channel is in now (the call's), or None when it is in none."""
        return next((b for b in await self.bridges() if channel_id in b.get("channels", ())), None)

    async def spy(
        self,
        channel_id: str,
        *,
        whisper: bool = False,
        snoop_id: str | None = None,
        app_args: str | None = None,
    ) -> JSON:
        """A snoop channel that hears both directions of ``channel_id`` (what its phone says and
        hears); with ``whisper`` what is said into the snoop is heard by that channel's phone only
        (whisper ``out``: the far party of the call does not hear it) -- a supervisor's coaching."""
        return await self.snoop(
            channel_id, spy="both", whisper="out" if whisper else "none", snoop_id=snoop_id, app_args=app_args
        )

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_duration: int = 0,
        if_exists: str = "fail",
    ) -> JSON:
        """One mixed recording of the bridge into astspooldir/recording/<name>.<fmt>."""
        return await self._record("bridges", bridge_id, name, fmt, max_duration, if_exists)

    async def _record(
        self, kind: str, target: str, name: str, fmt: str, max_duration: int, if_exists: str, **extra: Any
    ) -> JSON:
        result: JSON = await self.request(
            "POST",
            _path(kind, target, "record"),
            name=name,
            format=fmt,
            maxDurationSeconds=max_duration,
            ifExists=if_exists,
            **extra,
        )
        return result

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", _path("recordings", "live", name, "stop"))

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", _path("channels", channel_id, "moh"), mohClass=moh_class)

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", _path("channels", channel_id, "moh"))

    async def subscribe(self, event_source: str, *, app: str | None = None) -> None:
        """Subscribe the app (this client's, or `app`) to a source (``channel:<id>``,
        ``bridge:<id>``): its events keep coming while a channel runs dialplan outside Stasis."""
        await self.request(
            "POST", _path("applications", app or self.app, "subscription"), eventSource=event_source
        )

    async def filter_events(self, disallowed: Sequence[str], *, app: str | None = None) -> None:
        """Asterisk stops sending the app events of these types (``PUT .../eventFilter``): it
        neither writes them to the websocket nor has us read them. For the app as a whole, until
        Asterisk restarts (so set again at every (re)connection)."""
        body = {"disallowed": [{"type": kind} for kind in disallowed]}
        await self.request("PUT", _path("applications", app or self.app, "eventFilter"), body=body)

    async def applications(self) -> list[JSON]:
        """Every Stasis app Asterisk knows, with the channels subscribed to it (``channel_ids``);
        an app whose websocket closed stays listed while it has channels."""
        result: list[JSON] = await self.request("GET", "/applications")
        return result

    async def get_global(self, name: str) -> str:
        """A global dialplan variable ("" when unset)."""
        result: JSON | None = await self.request("GET", "/asterisk/variable", variable=name)
        return str((result or {}).get("value") or "")

    async def set_global(self, name: str, value: str) -> None:
        await self.request("POST", "/asterisk/variable", variable=name, value=value)

    async def get_endpoint(self, technology: str, resource: str) -> JSON:
        result: JSON = await self.request("GET", _path("endpoints", technology, resource))
        return result

    async def reload_module(self, name: str) -> None:
        """Reload one module, e.g. res_pjsip.so after rewriting pjsip_agents.conf."""
        await self.request("PUT", _path("asterisk", "modules", name))

    # ------------------------------------------------------------ events

    def events_url(self, *, subscribe_all: bool = False, app: str | None = None) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = urlencode(build_params({"app": app or self.app, "subscribeAll": subscribe_all or None}))
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))

    def _auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.user}:{self._password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def events(
        self,
        *,
        subscribe_all: bool = False,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        app: str | None = None,
    ) -> AsyncGenerator[JSON, None]:
        """Events for the app (this client's, or `app`), forever. Yields ``WarmlineConnected`` once
        connected the first time and ``WarmlineReconnected`` after every reconnect (Asterisk
        restarted or the socket dropped), so a caller knows when originates into the app will work
        and when to reconcile."""
        app = app or self.app
        url = self.events_url(subscribe_all=subscribe_all, app=app)
        backoff = initial_backoff
        connected_before = False
        while True:
            try:
                # Imported with this module, not by websockets' lazy import at the first connect:
                # a worker's first connection must not also pay for loading the client's modules.
                async with ws_connect(
                    url, additional_headers=self._auth_header(), open_timeout=5, max_size=2**22
                ) as ws:
                    yield {"type": RECONNECTED if connected_before else CONNECTED, "application": app}
                    connected_before = True
                    backoff = initial_backoff
                    async for message in ws:
                        event = json.loads(message)
                        if isinstance(event, dict):
                            yield event
            except (TimeoutError, OSError, WebSocketException) as exc:
                log.info("ARI events %s: %s; retrying in %.1f s", self.base_url, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
