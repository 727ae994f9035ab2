"""core.ami against an in-memory AMI server (tests.fakes.ami) on loopback; the loop clock is virtual."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from core.ami import AmiClient, AmiError, decode, encode
from core.settings import AsteriskNode, Settings
from tests.fakes.ami import FakeAmi
from tests.fakes.clock import run_virtual
from tests.utils.waiting import until


def with_ami(body: Callable[[FakeAmi, AmiClient], Awaitable[Any]], *, secret: str | None = None) -> Any:
    async def main() -> Any:
        fake = FakeAmi()
        async with fake.running():
            client = AmiClient("127.0.0.1", fake.port, fake.username, secret or fake.secret, timeout=5.0)
            async with client:
                return await body(fake, client)

    return run_virtual(main())


def test_an_action_is_answered_by_its_own_reply_after_one_login() -> None:
    async def body(fake: FakeAmi, ami: AmiClient) -> None:
        started = await ami.action("MixMonitor", Channel="chan-1", Options="r(a.wav)t(b.wav)i(VAR)")
        stopped = await ami.action("StopMixMonitor", Channel="chan-1", MixMonitorID=started["MixMonitorID"])
        assert started["Response"] == "Success" and started["MixMonitorID"].startswith("0x")
        assert stopped["Response"] == "Success"
        assert fake.names() == ["Login", "MixMonitor", "StopMixMonitor"]
        assert fake.logins == 1 and ami.connections == 1
        login = fake.actions[0]
        assert (login["Username"], login["Secret"], login["Events"]) == ("warmline", "***", "off")
        ids = [a["ActionID"] for a in fake.actions]
        assert len(set(ids)) == 3, "each action its own ActionID"
        assert started["ActionID"] == ids[1]

    with_ami(body)


def test_asterisk_saying_error_is_an_ami_error_with_its_message() -> None:
    async def body(fake: FakeAmi, ami: AmiClient) -> None:
        fake.refuse("MixMonitor", "No such channel")
        with pytest.raises(AmiError, match="No such channel") as caught:
            await ami.action("MixMonitor", Channel="gone")
        assert caught.value.action == "MixMonitor"
        with pytest.raises(AmiError, match="Invalid/unknown command"):
            await ami.action("Originate", Channel="x")
        assert ami.connections == 1, "an error reply keeps the connection"

    with_ami(body)


def test_a_wrong_secret_fails_and_is_not_retried_at_once_nor_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def body(fake: FakeAmi, ami: AmiClient) -> None:
        caplog.set_level(logging.DEBUG)
        with pytest.raises(AmiError, match="Authentication failed"):
            await ami.action("MixMonitor", Channel="c")
        with pytest.raises(AmiError, match="unavailable"):
            await ami.action("MixMonitor", Channel="c")  # within retry_after: no new attempt
        assert fake.names() == ["Login"]
        await asyncio.sleep(ami.retry_after)
        with pytest.raises(AmiError, match="Authentication failed"):
            await ami.action("MixMonitor", Channel="c")
        assert fake.names() == ["Login", "Login"], "tried again after retry_after"
        assert "wrong-secret" not in caplog.text and "wrong-secret" not in repr(ami)

    with_ami(body, secret="wrong-secret")


def test_replies_are_matched_by_action_id_not_by_order() -> None:
    async def body(fake: FakeAmi, ami: AmiClient) -> None:
        first = await ami.action("MixMonitor", Channel="one", Options="i(V)")
        release = fake.hold("StopMixMonitor")
        stopping = asyncio.create_task(ami.action("StopMixMonitor", Channel="one"))
        await until(lambda: "StopMixMonitor" in fake.names(), what="the stop sent")
        release.set()
        assert (await stopping)["Response"] == "Success"
        assert first["MixMonitorID"] in fake.monitors

    with_ami(body)


def test_no_reply_within_the_timeout_is_an_error() -> None:
    async def body(fake: FakeAmi, ami: AmiClient) -> None:
        await ami.action("MixMonitor", Channel="c")  # logged in
        fake.hold("StopMixMonitor")
        with pytest.raises(AmiError, match="no reply within 5 s"):
            await ami.action("StopMixMonitor", Channel="c")

    with_ami(body)


def test_a_broken_connection_fails_the_waiting_action_and_the_next_one_reconnects() -> None:
    async def body(fake: FakeAmi, ami: AmiClient) -> None:
        await ami.action("MixMonitor", Channel="c")
        fake.hold("StopMixMonitor")
        waiting = asyncio.create_task(ami.action("StopMixMonitor", Channel="c"))
        await until(lambda: "StopMixMonitor" in fake.names(), what="the stop sent")
        fake.drop()
        with pytest.raises(AmiError) as caught:
            await waiting
        assert caught.value.action == "StopMixMonitor"
        await until(lambda: not ami.connected, what="the client saw the connection go")
        fake.release("StopMixMonitor")
        again = await ami.action("MixMonitor", Channel="c")
        assert again["Response"] == "Success" and fake.logins == 2 and ami.connections == 2

    with_ami(body)


def test_nothing_listening_is_an_ami_error() -> None:
    async def main() -> None:
        fake = FakeAmi()
        async with fake.running():
            port = fake.port
        ami = AmiClient("127.0.0.1", port, "warmline", "s")
        with pytest.raises(AmiError, match="connect"):
            await ami.action("MixMonitor", Channel="c")
        await ami.aclose()

    run_virtual(main())


def test_fields_are_single_lines() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        encode({"Action": "MixMonitor", "Channel": "c\r\nAction: Originate"})
    assert decode(b"Response: Success\r\nMessage: a: b\r\nMixMonitorID: 0x1") == {
        "Response": "Success",
        "Message": "a: b",
        "MixMonitorID": "0x1",
    }


def test_a_node_without_an_ami_port_has_no_client(tmp_path: Any) -> None:
    settings = Settings(var_dir=tmp_path / "var", _env_file=None)
    assert AmiClient.for_node(AsteriskNode(ami_port=None), settings) is None
    client = AmiClient.for_node(AsteriskNode(ami_port=16038, ami_secret="given"), settings)
    assert client is not None and (client.port, client.username) == (16038, "warmline")
    lab = AmiClient.for_node(AsteriskNode(), settings)
    assert lab is not None and lab.port == 15038, "the default lab's AMI, its secret generated"


def test_an_action_asked_while_the_login_is_under_way_waits_for_it() -> None:
    """The nailed lab's MixMonitor was refused once (Asterisk's security log: RequestNotAllowed,
    no account): a second action saw the socket open, before the banner and the Login, and was
    written first. It waits for the login now."""

    async def body(fake: FakeAmi, ami: AmiClient) -> list[str]:
        fake.banner_held = asyncio.Event()
        first = asyncio.create_task(ami.action("Ping"))
        await until(lambda: ami._writer is not None, what="the socket open")
        second = asyncio.create_task(ami.action("Ping"))
        await asyncio.sleep(0.5)
        fake.banner_held.set()
        await asyncio.gather(first, second, return_exceptions=True)
        return fake.names()

    assert with_ami(body) == ["Login", "Ping", "Ping"]
