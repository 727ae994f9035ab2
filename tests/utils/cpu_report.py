"""Where the suite's CPU goes, per test file: an opt-in pytest plugin for tuning `make test`.

    PYTEST_ADDOPTS="--cpu-report" make test
    .venv/bin/python -m tests.utils.cpu_report var/cpu-report    # the table, costliest first

The machines have two cores and the suite saturates them, so wall time is set by CPU, not by
waiting; JUnit durations cannot say which file costs the CPU (every test is slowed by the others).
For each test (its set-up and tear-down included, so a module's lab counts in its file) this
records the worker's own CPU (every thread: an in-process server, the dialer) and its reaped
children's (Asterisk, softphones, a browser), one JSON line per test in
``var/cpu-report/<worker>.jsonl``. Children still running are counted when they are reaped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path

import pytest

REPORT_DIR = Path("var/cpu-report")
# When this worker's pytest loaded the plugin: its first test's start minus this is its start-up
# (importing, collecting), which no test's own figures hold.
LOADED_AT = time.time()


def _cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-report", action="store_true", help=f"CPU per test into {REPORT_DIR}/")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    if not item.config.getoption("--cpu-report"):
        yield
        return
    own0, kids0 = _cpu()
    at = time.time()
    wall0 = time.monotonic()
    yield
    own1, kids1 = _cpu()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    line = {
        "test": item.nodeid,
        "file": item.nodeid.split("::", 1)[0],
        "wall_s": round(time.monotonic() - wall0, 3),
        "at": round(at, 3),
        "loaded_at": round(LOADED_AT, 3),
        "own_cpu_s": round(own1 - own0, 3),
        "children_cpu_s": round(kids1 - kids0, 3),
    }
    with (REPORT_DIR / f"{worker}.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")


def summarise(folder: Path) -> str:
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    for path in folder.glob("*.jsonl"):
        for raw in path.read_text().splitlines():
            row = json.loads(raw)
            acc = files[row["file"]]
            acc[0] += row["wall_s"]
            acc[1] += row["own_cpu_s"]
            acc[2] += row["children_cpu_s"]
            acc[3] += 1
    total_own = sum(a[1] for a in files.values())
    total_kids = sum(a[2] for a in files.values())
    lines = [f"{'cpu_s':>8} {'own':>7} {'kids':>7} {'wall_s':>8} {'tests':>5}  file"]
    for name, (wall, own, kids, n) in sorted(files.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        lines.append(f"{own + kids:8.1f} {own:7.1f} {kids:7.1f} {wall:8.1f} {int(n):5d}  {name}")
    lines.append(f"{total_own + total_kids:8.1f} {total_own:7.1f} {total_kids:7.1f}  (all files)")
    return "\n".join(lines + _timeline(folder))


def _timeline(folder: Path) -> list[str]:
    """Per worker, seconds from the first worker's start: loaded, first test, last test's end."""
    spans: dict[str, list[float]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        rows = [json.loads(raw) for raw in path.read_text().splitlines()]
        rows = [r for r in rows if "at" in r]
        if rows:
            end = max(r["at"] + r["wall_s"] for r in rows)
            spans[path.stem] = [rows[0]["loaded_at"], min(r["at"] for r in rows), end]
    if not spans:
        return []
    origin = min(s[0] for s in spans.values())
    lines = [f"{'worker':>8} {'loaded':>7} {'first':>7} {'end':>7}  (seconds from the first start)"]
    for worker, (loaded, first, end) in spans.items():
        lines.append(f"{worker:>8} {loaded - origin:7.1f} {first - origin:7.1f} {end - origin:7.1f}")
    return lines


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1] if len(sys.argv) > 1 else REPORT_DIR)))
