"""The bus against real Mosquitto brokers.

Most tests use the shared broker from Settings (127.0.0.1:1883 by default), each under its own
topic prefix so concurrent runs never see each other. Tests that kill a broker start a private
Mosquitto on a free loopback port so the shared one is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.bus import Backoff, Bus, Subscription
from core.messages import AgentState, CallEvent, ServiceHealth
from core.settings import Settings
from tests.utils import free_port, until

pytestmark = pytest.mark.integration

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
FAST = Backoff(initial=0.05, maximum=0.5)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
async def shared() -> AsyncIterator[Settings]:
    """Settings for the shared broker under a private prefix; retained leftovers are cleared after."""
    settings = Settings(_env_file=None)
    if not _reachable(settings.mqtt_host, settings.mqtt_port):
        pytest.skip(f"no MQTT broker at {settings.mqtt_host}:{settings.mqtt_port}")
    settings = settings.model_copy(update={"topic_prefix": f"warmline-test-{uuid.uuid4().hex[:12]}"})
    yield settings
    await _clear_retained(settings)


async def _clear_retained(settings: Settings) -> None:
    async with shared_bus(settings) as bus:
        await connected(bus)
        async with bus.subscribe("#") as everything:
            paths: set[str] = set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    async for path, _ in everything:
                        paths.add(path)
        for path in paths:
            await bus.clear_retained(path)


def shared_bus(settings: Settings, **kwargs: Any) -> Bus:
    return Bus(
        settings.mqtt_host,
        settings.mqtt_port,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        prefix=settings.topic_prefix,
        backoff=FAST,
        **kwargs,
    )


async def receive(sub: Subscription[T]) -> tuple[str, T]:
    async with asyncio.timeout(30):  # a safety net, generous so a busy machine passes
        return await anext(sub)


async def connected(*buses: Bus) -> None:
    async with asyncio.timeout(30):
        for bus in buses:
            await bus.wait_connected()


class PrivateBroker:
    """A Mosquitto of our own on a free loopback port, which a test may kill and restart."""

    def __init__(self, workdir: Path) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.skip("mosquitto is not installed")
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nuser root\n"
        )
        self.log = workdir / "mosquitto.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                MOSQUITTO, "-c", str(self.config), stdout=log, stderr=log
            )
        await until(lambda: _reachable("127.0.0.1", self.port), timeout=30, interval=0.02)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path)
    yield broker
    await broker.kill()


# -- against the shared broker ----------------------------------------------------------------


async def test_publish_subscribe_round_trip(shared: Settings) -> None:
    async with shared_bus(shared) as listener, shared_bus(shared, component="dialer") as talker:
        await connected(listener, talker)
        async with (
            listener.subscribe(CallEvent.pattern(), CallEvent) as events,
            listener.subscribe("calls/#") as raw,
        ):
            event = CallEvent(
                call_id=str(uuid.uuid4()), campaign="flu", kind="answered", detail={"amd": "HUMAN"}
            )
            assert await talker.publish(event) is True
            path, got = await receive(events)
            assert path == f"calls/{event.call_id}"
            assert got == event
            raw_path, data = await receive(raw)
            assert raw_path == path
            assert data["kind"] == "answered"
            assert data["detail"] == {"amd": "HUMAN"}


async def test_late_subscriber_sees_retained_agent_state(shared: Settings) -> None:
    state = AgentState(agent="1001", state="wrap_up", reason="notes", since=datetime.now(UTC))
    async with shared_bus(shared) as softphone:
        await connected(softphone)
        assert await softphone.publish(state) is True

    async with shared_bus(shared) as supervisor:
        await connected(supervisor)
        async with supervisor.subscribe(AgentState.pattern(), AgentState) as states:
            path, got = await receive(states)
            assert path == "agents/1001/state"
            assert got == state
            await supervisor.clear_retained(state.path)

    async with shared_bus(shared) as later:
        await connected(later)
        async with later.subscribe(AgentState.pattern(), AgentState) as states:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await anext(states)


async def test_unreadable_payloads_are_skipped(shared: Settings) -> None:
    async with shared_bus(shared) as bus:
        await connected(bus)
        async with bus.subscribe(AgentState.pattern(), AgentState) as states:
            await bus._submit(f"{shared.topic_prefix}/agents/1001/state", b"not json", retain=False)
            await bus._submit(f"{shared.topic_prefix}/agents/1001/state", b'{"agent": "1001"}', retain=False)
            good = AgentState(agent="1001", state="available", since=datetime.now(UTC))
            await bus._submit(good.topic(shared.topic_prefix), good.model_dump_json(), retain=False)
            _, got = await receive(states)
            assert got == good


async def test_health_is_announced_and_stopped(shared: Settings) -> None:
    async with shared_bus(shared) as observer:
        await connected(observer)
        async with observer.subscribe(ServiceHealth.pattern(), ServiceHealth) as health:
            async with shared_bus(shared, component="ivr") as ivr:
                await connected(ivr)
                _, up = await receive(health)
                assert (up.component, up.ok) == ("ivr", True)
                await ivr.publish(ServiceHealth(component="ivr", ok=False, detail="no prompts"))
                _, degraded = await receive(health)
                assert degraded.detail == "no prompts"
            _, stopped = await receive(health)
            assert (stopped.ok, stopped.detail) == (False, "stopped")


async def test_last_will_marks_a_killed_component_down(shared: Settings) -> None:
    script = (
        "import asyncio, sys\n"
        "from core.bus import Bus\n"
        "async def main():\n"
        "    async with Bus(sys.argv[1], int(sys.argv[2]), prefix=sys.argv[3], component='doomed') as bus:\n"
        "        await bus.wait_connected()\n"
        "        print('up', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    async with shared_bus(shared) as observer:
        await connected(observer)
        async with observer.subscribe(ServiceHealth.pattern(component="doomed"), ServiceHealth) as health:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                script,
                shared.mqtt_host,
                str(shared.mqtt_port),
                shared.topic_prefix,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert proc.stdout is not None
                async with asyncio.timeout(60):  # a Python start-up on a busy machine
                    assert (await proc.stdout.readline()).strip() == b"up"
                _, alive = await receive(health)
                assert alive.ok is True
                proc.kill()
                await proc.wait()
                _, dead = await receive(health)
                assert (dead.ok, dead.detail) == (False, "connection lost")
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()


# -- against a private broker that the test kills ---------------------------------------------


async def test_broker_restart_resumes_subscription_and_delivers_queued(private_broker: PrivateBroker) -> None:
    await private_broker.start()
    states: list[tuple[float, bool]] = []
    bus = Bus(
        "127.0.0.1",
        private_broker.port,
        prefix=f"warmline-test-{uuid.uuid4().hex[:12]}",
        backoff=FAST,
        on_state=lambda up, _detail: states.append((time.monotonic(), up)),
    )
    async with bus:
        await connected(bus)
        async with bus.subscribe(CallEvent.pattern(), CallEvent) as events:
            sent: list[str] = []

            async def send(n: int) -> bool:
                sent.append(f"seq-{n}")
                return await bus.publish(CallEvent(call_id=f"seq-{n}", kind="progress"))

            for n in range(5):  # mid-stream
                assert await send(n) is True
            await private_broker.kill()
            await until(lambda: not bus.connected, timeout=30)

            for n in range(5, 10):  # while the broker is down
                assert await send(n) is False
            assert bus.pending == 5

            await asyncio.sleep(1.0)  # a few failed attempts, so the backoff has grown
            await private_broker.start()
            # From the moment the broker listens (its own start-up, slow on a busy machine, is not
            # the bus's to answer for): at most one capped backoff and a connect.
            restarted = time.monotonic()
            await connected(bus)
            reconnect = time.monotonic() - restarted

            assert await send(10) is True
            received: set[str] = set()
            async with asyncio.timeout(30):
                while received != set(sent):
                    _, event = await anext(events)
                    received.add(event.call_id)

    assert bus.connects == 2
    assert bus.pending == 0
    assert [up for _, up in states] == [True, False, True, False]
    print(f"\nreconnect after broker restart: {reconnect * 1000:.0f} ms")
    assert reconnect < 2.0


async def test_bus_started_before_the_broker_connects_later(private_broker: PrivateBroker) -> None:
    prefix = f"warmline-test-{uuid.uuid4().hex[:12]}"
    details: list[tuple[bool, str]] = []
    bus = Bus(
        "127.0.0.1",
        private_broker.port,
        prefix=prefix,
        backoff=FAST,
        on_state=lambda up, detail: details.append((up, detail)),
    )
    async with bus, bus.subscribe(AgentState.pattern(), AgentState) as states:
        state = AgentState(agent="2002", state="available", since=datetime.now(UTC))
        assert await bus.publish(state) is False
        await until(lambda: bool(details), timeout=30)
        assert details[0][0] is False
        assert "unreachable" in details[0][1]
        await private_broker.start()
        await connected(bus)
        _, got = await receive(states)
        assert got == state
    assert [up for up, _ in details] == [False, True, False]


async def test_outbox_is_bounded(private_broker: PrivateBroker) -> None:
    bus = Bus("127.0.0.1", private_broker.port, prefix="warmline-test-bounded", backoff=FAST, max_pending=3)
    async with bus:
        for n in range(5):
            assert await bus.publish(CallEvent(call_id=f"c{n}", kind="progress")) is False
        assert (bus.pending, bus.dropped) == (3, 2)
