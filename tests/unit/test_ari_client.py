"""core.ari: request building, error mapping and the events URL, against httpx.MockTransport."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from core.ari import AriClient, AriError, build_params

BASE = "http://127.0.0.1:18088/ari"


def make_client(handler, app: str = "warmline") -> AriClient:
    return AriClient(BASE, "warmline", "s3cret", app, transport=httpx.MockTransport(handler))


class Recorder:
    def __init__(self, status: int = 200, body: object = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body is None:
            return httpx.Response(self.status)
        return httpx.Response(self.status, json=self.body)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def test_build_params_drops_none_and_formats_values():
    assert build_params({"a": None, "b": True, "c": False, "d": 3, "e": ["x", "y"], "f": "z"}) == {
        "b": "true",
        "c": "false",
        "d": "3",
        "e": "x,y",
        "f": "z",
    }


async def test_originate_into_stasis_sends_params_and_variables():
    rec = Recorder(body={"id": "att-1", "state": "Down"})
    async with make_client(rec) as ari:
        channel = await ari.originate(
            "Local/13800138000@lab-pstn",
            channel_id="att-1",
            app_args=["dialer", "42"],
            variables={"WARMLINE_ATTEMPT": "42"},
            timeout=25,
            caller_id="warmline <4000>",
        )
    assert channel["id"] == "att-1"
    req = rec.last
    assert req.method == "POST"
    assert req.url.path == "/ari/channels"
    q = dict(req.url.params)
    assert q == {
        "endpoint": "Local/13800138000@lab-pstn",
        "channelId": "att-1",
        "timeout": "25",
        "callerId": "warmline <4000>",
        "app": "warmline",
        "appArgs": "dialer,42",
    }
    assert json.loads(req.content) == {"variables": {"WARMLINE_ATTEMPT": "42"}}
    expected = "Basic " + base64.b64encode(b"warmline:s3cret").decode()
    assert req.headers["authorization"] == expected


async def test_originate_into_dialplan_has_no_app():
    rec = Recorder(body={"id": "x"})
    async with make_client(rec) as ari:
        await ari.originate("Local/1@lab-pstn", context="warmline-amd", extension="s")
    q = dict(rec.last.url.params)
    assert q["context"] == "warmline-amd" and q["extension"] == "s" and q["priority"] == "1"
    assert "app" not in q
    assert rec.last.content == b""


async def test_ids_are_escaped_in_paths():
    rec = Recorder(status=204)
    async with make_client(rec) as ari:
        await ari.hangup("abc;2/../x", reason="busy")
    assert rec.last.method == "DELETE"
    assert rec.last.url.raw_path.startswith(b"/ari/channels/abc%3B2%2F..%2Fx?")
    assert dict(rec.last.url.params) == {"reason": "busy"}


async def test_error_maps_status_method_path_and_message():
    rec = Recorder(status=404, body={"message": "Channel not found"})
    async with make_client(rec) as ari:
        with pytest.raises(AriError) as info:
            await ari.answer("nope")
    err = info.value
    assert (err.status, err.method, err.path, err.message) == (
        404,
        "POST",
        "/channels/nope/answer",
        "Channel not found",
    )
    assert "404" in str(err)


async def test_error_with_plain_text_body():
    async with make_client(lambda r: httpx.Response(500, text="boom")) as ari:
        with pytest.raises(AriError) as info:
            await ari.channels()
    assert info.value.status == 500 and info.value.message == "boom"


async def test_connection_failure_is_status_zero_and_ping_false():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with make_client(refuse) as ari:
        with pytest.raises(AriError) as info:
            await ari.info()
        assert info.value.status == 0
        assert await ari.ping() is False


async def test_ping_true_and_get_variable():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ping"):
            return httpx.Response(200, json={"ping": "pong"})
        assert dict(request.url.params) == {"variable": "AMDSTATUS"}
        return httpx.Response(200, json={"value": "HUMAN"})

    async with make_client(handler) as ari:
        assert await ari.ping() is True
        assert await ari.get_variable("c1", "AMDSTATUS") == "HUMAN"


async def test_play_snoop_bridge_and_reload_paths():
    rec = Recorder(body={"id": "x"})
    async with make_client(rec) as ari:
        await ari.play("c1", ["sound:warmline/lab-hello", "sound:beep"], playback_id="pb1")
        assert rec.last.url.path == "/ari/channels/c1/play/pb1"
        assert rec.last.url.params["media"] == "sound:warmline/lab-hello,sound:beep"
        await ari.snoop("c1", spy="in", snoop_id="snoop-1", app_args="leg-a")
        assert rec.last.url.path == "/ari/channels/c1/snoop/snoop-1"
        assert dict(rec.last.url.params) == {
            "spy": "in",
            "whisper": "none",
            "app": "warmline",
            "appArgs": "leg-a",
        }
        await ari.create_bridge(bridge_id="b1")
        assert dict(rec.last.url.params) == {"type": "mixing", "bridgeId": "b1"}
        await ari.add_channel("b1", ["c1", "c2"])
        assert rec.last.url.path == "/ari/bridges/b1/addChannel"
        assert rec.last.url.params["channel"] == "c1,c2"
        await ari.record_bridge("b1", "0b7c", fmt="wav")
        assert rec.last.url.path == "/ari/bridges/b1/record"
        await ari.reload_module("res_pjsip.so")
        assert (rec.last.method, rec.last.url.path) == ("PUT", "/ari/asterisk/modules/res_pjsip.so")


def test_events_url():
    ari = AriClient(BASE, "warmline", "pw", "warmline")
    assert ari.events_url() == "ws://127.0.0.1:18088/ari/events?app=warmline"
    assert ari.events_url(subscribe_all=True).endswith("app=warmline&subscribeAll=true")
    secure = AriClient("https://pbx.example/ari/", "u", "p", "a")
    assert secure.events_url() == "wss://pbx.example/ari/events?app=a"


async def test_features_reach_asterisk_through_client_methods_with_escaped_ids():
    """Music on hold, subscriptions, playbacks, endpoints and channel recordings: every path is
    built by the client, ids escaped, so no feature writes an ARI URL itself."""
    rec = Recorder(body={})
    async with make_client(rec, app="warm line") as ari:
        await ari.start_moh("ch/1", "default")
        await ari.stop_moh("ch/1")
        await ari.subscribe("channel:agent-1")
        await ari.get_playback("pb?1")
        await ari.get_endpoint("PJSIP", "agent 7")
        await ari.record_channel("ch1", "ivr-x", max_duration=5, beep=True, max_silence=3, terminate_on="#")
        await ari.stop_recording("ivr-x")
    got = [(r.method, r.url.raw_path.decode().split("?")[0]) for r in rec.requests]
    assert got == [
        ("POST", "/ari/channels/ch%2F1/moh"),
        ("DELETE", "/ari/channels/ch%2F1/moh"),
        ("POST", "/ari/applications/warm%20line/subscription"),
        ("GET", "/ari/playbacks/pb%3F1"),
        ("GET", "/ari/endpoints/PJSIP/agent%207"),
        ("POST", "/ari/channels/ch1/record"),
        ("POST", "/ari/recordings/live/ivr-x/stop"),
    ]
    assert rec.requests[0].url.params["mohClass"] == "default"
    assert rec.requests[2].url.params["eventSource"] == "channel:agent-1"
    record = rec.requests[5].url.params
    assert (record["maxDurationSeconds"], record["maxSilenceSeconds"], record["terminateOn"]) == ("5", "3", "#")
    assert record["beep"] == "true" and record["ifExists"] == "fail"
