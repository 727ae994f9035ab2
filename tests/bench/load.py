"""Shared parts of the load benches (test_load_bench.py, test_soak.py): one lab slot, the
Asterisk-alone ramp, a sampler of calls up and ARI's answer time, process RSS and descriptors, and
SIPp (Debian's sip-tester) as the far end of a SIP trunk (the lab's pjsip.conf: lab-sipp).

A call is counted once: the callee's half of its Local channel (``Local/<number>@lab-pstn-...;2``)
in state Up, the same way whether the call came straight through ARI or through the dialer.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.ari import AriClient, AriError
from core.db import Database
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus
from tests.lab import LabPorts, lab_ports, private_lab
from tests.utils.processes import stop
from warmline import migrate
from warmline.lab import lab_status

PORTS = lab_ports("load")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SLOW = 2.0  # seconds: an ARI answer slower than this ends the ramp
SIPP_DIR = Path(__file__).resolve().parent / "sipp"  # the far end's scenarios
TRUNK_TEMPLATE = "PJSIP/{number}@lab-sipp"  # the lab's trunk to SIPp (config/asterisk/pjsip.conf)
CEILING_FILE = (
    Path(os.environ.get("WARMLINE_BENCH_DIR", tempfile.gettempdir())) / "warmline-load-ceiling.json"
)

# The dialer's route for the long callee: the IVR says one sentence, then records the callee until
# they hang up (callee 9 talks ~60 s), so each call has both IVR and a recording running.
RECORD_FLOW = """\
name: bench_record
description: bench - one sentence, then record until the callee hangs up
voice: cmn
start: hello
nodes:
  hello:
    type: play
    say: "您好，这里是社区服务中心，请在提示音后留言。"
    next: message
  message:
    type: record
    max_seconds: 120
    silence_end: null
    beep: true
    terminate_on: none
    next: bye
  bye:
    type: hangup
"""


@contextlib.contextmanager
def load_lab(tmp: Path) -> Iterator[tuple[Settings, Database]]:
    var = tmp / "var"
    (var / "flows").mkdir(parents=True)
    (var / "flows" / "bench_record.yaml").write_text(RECORD_FLOW, encoding="utf-8")
    url = f"sqlite:///{var / 'bench.db'}"
    with private_lab(var, PORTS, database_url=url, dialer_ring_timeout=15) as settings:
        migrate.upgrade(url)
        db = Database(url)
        try:
            yield settings, db
        finally:
            db.dispose()


def ari_client(settings: Settings) -> AriClient:
    st = lab_status(settings)
    return AriClient(st.ari_url, st.ari_user, st.ari_password, st.app)


def asterisk_pid(settings: Settings) -> int:
    pid = lab_status(settings).pid
    assert pid is not None
    return pid


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


def rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE / 1e6


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def calls_up(channels: list[dict[str, object]], prefix: str) -> int:
    """Answered calls to numbers starting with `prefix`: callee halves (;2) of Local channels, Up."""
    n = 0
    for ch in channels:
        name = str(ch.get("name", ""))
        number = name.removeprefix("Local/").removeprefix("86")  # the dialer dials E.164 digits
        if number.startswith(prefix) and name.endswith(";2") and ch.get("state") == "Up":
            n += 1
    return n


def campaign(
    db: Database,
    name: str,
    digit: str,
    n: int,
    cps: float,
    max_channels: int,
    flow: str = "vaccination_reminder",
) -> None:
    spec = {
        "name": name,
        "kind": "broadcast",
        "flow": flow,
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": 1,
        "max_channels": max_channels,
        "calls_per_second": cps,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="bench")
    prefix = number_prefix(name)
    lines = ["name,phone,clinic,date"] + [f"x,{prefix}{i:05d}{digit},c,d" for i in range(n)]
    import_list(db, name, io.BytesIO(("\n".join(lines) + "\n").encode()), f"{name}.csv", actor="bench")
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor="bench")


def number_prefix(name: str) -> str:
    """A 5-digit prefix of its own for each campaign: 13 + 3 digits from the name (a valid mobile)."""
    return "13" + f"{sum(map(ord, name)) * 7919 % 1000:03d}"


@dataclass
class Sampler:
    """Lists the channels every `period` seconds in a thread of its own; keeps the peak of calls up
    for `prefix` and the slowest ARI answer."""

    settings: Settings
    prefix: str
    period: float = 1.0
    peak: int = 0
    last: int = 0
    slowest: float = 0.0
    counts: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    async def _run(self) -> None:
        async with ari_client(self.settings) as ari:
            while not self._stop.is_set():
                t0 = time.monotonic()
                with contextlib.suppress(AriError):
                    up = calls_up(await ari.channels(), self.prefix)
                    self.last = up
                    self.peak = max(self.peak, up)
                    self.counts.append(up)
                self.slowest = max(self.slowest, time.monotonic() - t0)
                await asyncio.sleep(max(0.0, self.period - (time.monotonic() - t0)))


@dataclass
class Ceiling:
    peak: int  # most calls up at once
    held: int  # calls still up at the end of the hold
    placed: int
    failed: int
    slowest: float  # slowest ARI answer (originate or listing), seconds
    reason: str


async def hang_up_all(settings: Settings, *, within: float = 40.0) -> None:
    """Hang up every channel on the lab, 20 requests at a time, giving up after `within` seconds."""
    gate = asyncio.Semaphore(20)

    async def sweep() -> None:
        async with ari_client(settings) as ari:

            async def one(channel_id: str) -> None:
                async with gate:
                    with contextlib.suppress(AriError):
                        await ari.hangup(channel_id)

            while channels := await ari.channels():  # until Asterisk has none left
                await asyncio.gather(*(one(str(ch["id"])) for ch in channels))
                await asyncio.sleep(1)

    with contextlib.suppress(TimeoutError, AriError):
        async with asyncio.timeout(within):
            await sweep()


def asterisk_alone_ceiling(
    settings: Settings, *, cps: float = 20, max_calls: int = 800, ramp_s: float = 40, hold_s: float = 10
) -> Ceiling:
    """Long callees (9) originated straight through ARI into the dialplan, where our side only waits
    (no dialer, no recording, no IVR): `cps` per second until an originate fails, ARI answers in
    more than 2 s, `max_calls` or `ramp_s`; then held `hold_s` seconds. Every call is hung up after."""
    prefix = "13999"

    async def ramp() -> Ceiling:
        placed = failed = 0
        slowest = 0.0
        reason = f"ramp ended after {ramp_s:.0f} s"
        with Sampler(settings, prefix) as sampler:
            async with ari_client(settings) as ari:
                in_flight: dict[int, float] = {}

                async def one(i: int) -> None:
                    nonlocal failed, slowest
                    t0 = in_flight[i] = time.monotonic()
                    try:
                        await ari.originate(
                            f"Local/{prefix}{i:05d}9@lab-pstn",
                            channel_id=f"alone-{uuid.uuid4().hex[:12]}",
                            context="lab-callee",
                            extension="2",  # our side: Ringing() then Wait(600), nothing played
                            timeout=15,
                        )
                    except AriError:
                        failed += 1
                    finally:
                        del in_flight[i]
                    slowest = max(slowest, time.monotonic() - t0)

                tasks: list[asyncio.Task[None]] = []
                oldest = 0.0
                start = time.monotonic()
                while True:
                    due = int((time.monotonic() - start) * cps) + 1
                    while placed < min(due, max_calls):
                        tasks.append(asyncio.ensure_future(one(placed)))
                        placed += 1
                    if failed:
                        reason = "an originate failed"
                        break
                    oldest = time.monotonic() - min(in_flight.values(), default=time.monotonic())
                    if max(slowest, sampler.slowest, oldest) > SLOW:
                        reason = f"ARI answered in more than {SLOW:.0f} s"
                        break
                    if placed >= max_calls:
                        reason = f"all {max_calls} calls placed"
                        break
                    if time.monotonic() - start > ramp_s:
                        break
                    await asyncio.sleep(0.05)
                _, late = await asyncio.wait(tasks, timeout=10)
                for task in late:  # an originate ARI never answered: counted as failed
                    task.cancel()
                failed += len(late)
                slowest = max(slowest, oldest)
            await asyncio.sleep(hold_s)
            held = sampler.last
            peak = sampler.peak
            slowest = max(slowest, sampler.slowest)
        await hang_up_all(settings)
        return Ceiling(peak, held, placed, failed, slowest, reason)

    return asyncio.run(ramp())


def save_ceiling(ceiling: Ceiling) -> None:
    CEILING_FILE.write_text(json.dumps(ceiling.__dict__), encoding="utf-8")


def saved_ceiling() -> int | None:
    """The ceiling measured last (WARMLINE_SOAK_CEILING overrides; else the last load bench's)."""
    if os.environ.get("WARMLINE_SOAK_CEILING"):
        return int(os.environ["WARMLINE_SOAK_CEILING"])
    if CEILING_FILE.is_file():
        return int(json.loads(CEILING_FILE.read_text(encoding="utf-8"))["peak"])
    return None


class Traffic:
    """What an ARI client sent and heard, by kind: requests ("POST channels", "DELETE channels/*",
    ...) and events by type; `ari_factory(...)` gives the worker clients that count into it (a
    Counter's increment per request and event: nothing next to their JSON)."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    def ari_factory(self, node: AsteriskNode, settings: Settings) -> AriClient:
        ari = AriClient(
            node.ari_url,
            node.ari_user,
            settings.node_ari_password(node),
            node.app,
            timeout=settings.dialer_ari_timeout,
        )
        inner_request, inner_events = ari.request, ari.events

        async def request(method: str, path: str, *, body: Any = None, **params: Any) -> Any:
            parts = path.strip("/").split("/")
            self.requests[" ".join([method, parts[0], *("*" + p for p in parts[2:3])])] += 1
            return await inner_request(method, path, body=body, **params)

        async def events(**kw: Any) -> AsyncGenerator[dict[str, Any], None]:
            async for event in inner_events(**kw):
                self.events[str(event.get("type"))] += 1
                yield event

        ari.request = request  # type: ignore[method-assign]
        ari.events = events  # type: ignore[method-assign]
        return ari

    def per_attempt(self, attempts: int) -> str:
        def each(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {n / attempts:.1f}" for k, n in counter.most_common())

        return f"ARI requests per attempt: {each(self.requests)}; events per attempt: {each(self.events)}"


@dataclass
class FarEnd:
    """A SIPp UAS running one scenario of tests/bench/sipp/ on the lab's far-end port."""

    proc: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def sipp_far_end(scenario: str, ports: LabPorts, log_dir: Path, *, echo: bool = False) -> Iterator[FarEnd]:
    """SIPp answering the lab's trunk (lab-sipp) with `scenario` (tests/bench/sipp/<scenario>.xml) on
    ``ports.far_end``, its RTP on ``ports.far_end_media`` (echoed back with `echo`)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.fail("no sipp: make test installs Debian's sip-tester (scripts/install-system.sh test)")
    log = log_dir / f"sipp-{scenario}.log"
    argv = [
        sipp,
        "-sf",
        str(SIPP_DIR / f"{scenario}.xml"),
        "-i",
        "127.0.0.1",
        "-p",
        str(ports.far_end),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(ports.far_end_media),
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(log_dir / f"sipp-{scenario}-errors.log"),
        *(["-rtp_echo"] if echo else []),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _udp_bound(ports.far_end):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"SIPp did not start ({argv}): {log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)
        yield FarEnd(proc, log)
    finally:
        stop(proc, grace_s=5)


def asterisk_alone_cpu(settings: Settings, endpoint: str, n: int, cps: float) -> tuple[int, float]:
    """Asterisk's CPU per call (ms) for `n` calls to `endpoint` (a template with {number}: the
    lab's Local callee or the SIPp trunk) originated straight through ARI at `cps`, nothing on our
    side: each answered call goes to a dialplan extension that hangs up (lab-from-trunk). Counted
    from the first originate until Asterisk has no channel left. Returns (calls placed, ms)."""
    pid = asterisk_pid(settings)

    async def run() -> int:
        placed = 0
        async with ari_client(settings) as ari:

            async def one(i: int) -> None:
                nonlocal placed
                with contextlib.suppress(AriError):
                    await ari.originate(
                        endpoint.format(number=f"1399{i:06d}8"),
                        channel_id=f"alone-cpu-{uuid.uuid4().hex[:12]}",
                        context="lab-from-trunk",
                        extension="1",
                        timeout=15,
                    )
                    placed += 1

            tasks = []
            start = time.monotonic()
            for i in range(n):
                await asyncio.sleep(max(0.0, start + i / cps - time.monotonic()))
                tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.gather(*tasks)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not await ari.channels():
                    break
                await asyncio.sleep(0.5)
        return placed

    before = cpu_seconds(pid)
    placed = asyncio.run(run())
    spent = cpu_seconds(pid) - before
    return placed, spent / max(placed, 1) * 1000
