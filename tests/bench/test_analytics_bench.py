"""Benchmark: acoustic analytics in multiples of real time, against merely reading the same file.

    .venv/bin/pytest -m bench -s tests/bench/test_analytics_bench.py

A 20-minute 8 kHz stereo call (espeak-ng speech on both sides, pink noise, overtalk, dead air) is
made once in a temporary folder. The process is pinned to one CPU core; the analysis is
single-threaded anyway (webrtcvad frame by frame, numpy per block). Reading and analysing alternate
in the same run, after a warm-up pass of each, so both see the same page cache. Goal: at least
1,000x real time for the analysis.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import soundfile as sf

from recordings import analytics
from recordings.analytics import AnalysisSettings, analyze_file
from tests.audio_fixtures import ClipBank, have_tools, random_call, render

pytestmark = pytest.mark.bench

CALL_S = 1200.0
ROUNDS = 5
GOAL = 1000.0


@pytest.fixture(scope="module")
def long_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not have_tools():
        pytest.skip("espeak-ng and sox make the benchmark's speech")
    folder = tmp_path_factory.mktemp("bench")
    placements, duration = random_call(ClipBank(folder / "clips"), seed=11, duration_s=CALL_S)
    return render(folder / "long-call.wav", placements, duration, seed=11).path


@pytest.fixture
def one_core() -> Iterator[int | None]:
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    core = min(before)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


def read_only(path: Path) -> int:
    """What the analysis reads, the same way (blocks of 16-bit samples), and nothing else."""
    info = sf.info(str(path))
    block = round(info.samplerate * analytics.BLOCK_S)
    frames = 0
    for data in sf.blocks(str(path), blocksize=block, dtype="int16", always_2d=True):
        frames += len(data)
    return frames


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_analytics_speed(long_call: Path, one_core: int | None) -> None:
    info = sf.info(str(long_call))
    duration = info.frames / info.samplerate
    assert info.channels == 2 and info.samplerate == 8000

    read_only(long_call)  # warm-up: page cache, imports
    result = analyze_file(long_call)
    raw_vad = AnalysisSettings(gate_db=0)  # webrtcvad alone: no energy gate (smoothing is cheap)
    reads: list[float] = []
    runs: list[float] = []
    vads: list[float] = []
    for _ in range(ROUNDS):
        reads.append(timed(lambda: read_only(long_call)))
        runs.append(timed(lambda: analyze_file(long_call)))
        vads.append(timed(lambda: analyze_file(long_call, raw_vad)))

    tracemalloc.start()
    analyze_file(long_call)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    read_x = duration / statistics.median(reads)
    run_x = duration / statistics.median(runs)
    frames = 2 * duration / (result.settings.frame_ms / 1000)
    print()
    print(f"file: {duration / 60:.0f} min, 8 kHz stereo 16-bit, {long_call.stat().st_size / 1e6:.1f} MB")
    print(
        f"cpu: pinned to core {one_core}"
        if one_core is not None
        else "cpu: not pinned (no sched_setaffinity)"
    )
    print(
        f"read only (soundfile blocks): median {statistics.median(reads) * 1000:.1f} ms"
        f" (best {min(reads) * 1000:.1f}) = {read_x:,.0f}x real time"
    )
    print(
        f"full analysis:               median {statistics.median(runs) * 1000:.1f} ms"
        f" (best {min(runs) * 1000:.1f}) = {run_x:,.0f}x real time"
        f" = {statistics.median(runs) / frames * 1e6:.2f} us per 30 ms frame per channel"
    )
    print(f"analysis / read time: {statistics.median(runs) / statistics.median(reads):.1f}x")
    print(
        f"of which read + webrtcvad alone (no energy gate): {statistics.median(vads) * 1000:.1f} ms"
        f" = {duration / statistics.median(vads):,.0f}x real time"
    )
    print(f"peak memory traced during the analysis: {peak / 1e6:.1f} MB")
    print(
        f"figures: talk agent {result.talk_s.agent:.0f} s, customer {result.talk_s.customer:.0f} s,"
        f" dead air {result.silence_s:.0f} s, overtalk {result.overtalk_s:.0f} s in {result.overtalk_count}"
    )
    assert run_x >= GOAL, f"analysis at {run_x:.0f}x real time, goal {GOAL:.0f}x"
    assert peak < long_call.stat().st_size / 4, "the analysis must stream, not load the call"
