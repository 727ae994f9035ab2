"""Benchmark: a 1,000,000-row list of mixed formats imported into SQLite and PostgreSQL.

    make bench                                   # or: pytest -m bench -s tests/bench
    WARMLINE_BENCH_ROWS=100000 pytest -m bench -s tests/bench/test_import_bench.py

The list is GB18030 CSV as Excel on Chinese Windows writes it: mostly plain mobiles, and dashes,
spaces, +86/0086, full-width digits, landlines with area codes, foreign numbers, text, formulas,
duplicates and blank rows, with quoted addresses holding commas. In the same run a bare
`csv.reader` pass over the same file is timed; the import is reported as rows per second and as a
multiple of that pass. Each import runs in its own process, whose peak RSS (ru_maxrss) is compared
with its RSS before the import, once for a tenth of the file and once for all of it: a flat
memory profile shows as (nearly) the same growth for both.
"""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROWS = int(os.environ.get("WARMLINE_BENCH_ROWS", "1000000"))
GOAL = 5.0
pytestmark = pytest.mark.bench

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥建华文辉力明永健"
    "世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光"
    "天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江"
    "超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行"
    "时泰盛雄琛钧冠策腾楠榕风航弘"
)
DISTRICTS = [
    "东城区",
    "西城区",
    "朝阳区",
    "海淀区",
    "丰台区",
    "石景山区",
    "通州区",
    "顺义区",
    "昌平区",
    "大兴区",
]
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "157",
                   "158", "159", "166", "176", "177", "178", "180", "181", "182", "185", "186", "187", "188",
                   "189", "191", "198", "199"]  # fmt: skip
AREA_CODES = ["010", "020", "021", "022", "023", "025", "027", "028", "029", "0755", "0571", "0512"]


def _mobile(i: int) -> str:
    # Unique for every i below 30 * 10^8, spread over the prefixes, not in order.
    return MOBILE_PREFIXES[i % len(MOBILE_PREFIXES)] + f"{(i * 7919 + 12345) % 100_000_000:08d}"


def generate(path: Path, rows: int, seed: int = 3) -> dict[str, int]:
    """Write the list; return how many rows of each kind it has."""
    rng = random.Random(seed)
    kinds: dict[str, int] = {}
    seen: list[str] = []
    with path.open("w", encoding="gb18030", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([f"2024年第四季度 社区居民回访名单（共{rows}户）"])
        w.writerow(["序号", "姓名", "手机号码", "地址", "备注"])
        for n in range(1, rows + 1):
            r = rng.random()
            m = _mobile(n)
            if r < 0.70:
                kind, phone = "plain", m
            elif r < 0.76:
                kind, phone = "dashes", f"{m[:3]}-{m[3:7]}-{m[7:]}"
            elif r < 0.80:
                kind, phone = "spaces", f"{m[:3]} {m[3:7]} {m[7:]}"
            elif r < 0.83:
                kind, phone = "plus86", rng.choice(["+86 ", "+86", "0086 ", "86"]) + m
            elif r < 0.86:
                kind, phone = "fullwidth", m.translate({ord(c): 0xFF10 + int(c) for c in "0123456789"})
            elif r < 0.91:
                code = rng.choice(AREA_CODES)
                local = f"{2 + n % 7}{(n * 104729) % 10_000_000:07d}"
                kind, phone = (
                    "landline",
                    rng.choice([f"{code}-{local}", f"{code} {local[:4]} {local[4:]}", code + local]),
                )
            elif r < 0.93 and seen:
                kind, phone = "duplicate", rng.choice(seen)
            elif r < 0.94:
                kind, phone = "foreign", f"+1 650 {n % 900 + 100:03d} {n % 10000:04d}"
            elif r < 0.955:
                kind, phone = "text", rng.choice(["无", "不详", f"call {m}", "见备注", "空号"])
            elif r < 0.96:
                kind, phone = "formula", f"=A{n}"
            elif r < 0.97:
                kind = "blank"
                w.writerow(["", "", "", "", ""])
                kinds[kind] = kinds.get(kind, 0) + 1
                continue
            else:
                kind, phone = "plain", m
            if len(seen) < 5000 and kind == "plain":
                seen.append(m)
            kinds[kind] = kinds.get(kind, 0) + 1
            name = (
                rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
            )
            address = f"北京市{rng.choice(DISTRICTS)}{rng.randint(1, 300)}号院{rng.randint(1, 30)}号楼"
            if rng.random() < 0.2:
                address += f", {rng.randint(1, 6)}单元{rng.randint(101, 2402)}"  # quoted by the writer
            note = rng.choice(["", "", "", "独居", "子女在外地", "行动不便", "请在上午联系"])
            w.writerow([n, name, phone, address, note])
    return kinds


def bare_pass(path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of csv.reader over the file, decoding GB18030 as the import does."""
    started, cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="gb18030", newline="") as f:
        for _row in csv.reader(f):
            pass
    return time.perf_counter() - started, time.process_time() - cpu


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("bench")
    full, tenth = folder / "list.csv", folder / "list-tenth.csv"
    started = time.perf_counter()
    kinds = generate(full, ROWS)
    generate(tenth, max(ROWS // 10, 1000), seed=4)
    print(
        f"\ngenerated {ROWS:,} rows ({full.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s"
    )
    print("kinds: " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))
    return full, tenth, kinds


def run_child(db_url: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, db_url, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_import_benchmark(listing: tuple[Path, Path, dict[str, int]], db_url: str) -> None:
    full, tenth, kinds = listing
    bare_wall, bare_cpu = min(bare_pass(full) for _ in range(3))
    kind = db_url.split(":", 1)[0].split("+")[0]
    small = run_child(db_url, tenth)
    big = run_child(db_url.replace("warmline.db", "warmline-big.db") if kind == "sqlite" else db_url, full)
    assert big["rows"] == sum(kinds.values())
    assert big["accepted"] + big["rejected"] + big["skipped"] == big["rows"]
    assert big["skipped"] == kinds.get("blank", 0)
    assert big["reasons"]["duplicate"] == kinds.get("duplicate", 0)
    rows = big["rows"]
    size_mb, load = full.stat().st_size / 1e6, os.getloadavg()[0]
    wall, cpu = big["seconds"], big["cpu"]
    print(
        f"\n{kind}: {rows:,} rows, {size_mb:.0f} MB GB18030 CSV; load average {load:.1f}\n"
        f"  bare csv.reader pass  {bare_wall:6.2f} s wall {rows / bare_wall:>9,.0f} rows/s   {bare_cpu:6.2f} s CPU\n"
        f"  import                {wall:6.2f} s wall {rows / wall:>9,.0f} rows/s   {cpu:6.2f} s CPU"
        " (this process; the database server's own work is not in it)\n"
        f"  ratio to the bare pass: {wall / bare_wall:.1f}x wall, {cpu / bare_cpu:.1f}x CPU (goal {GOAL:g}x)\n"
        f"  accepted {big['accepted']:,}, rejected {big['rejected']:,}, skipped {big['skipped']:,}; {big['reasons']}\n"
        f"  peak RSS growth during the import: {small['rss_growth_mb']:.1f} MB for {small['rows']:,} rows,"
        f" {big['rss_growth_mb']:.1f} MB for {rows:,} rows (process peak {big['peak_rss_mb']:.0f} MB)"
    )


def _child(db_url: str, path: str) -> None:
    """Run one import in this process and print its figures as JSON (last line of stdout)."""
    from core.db import Database
    from dialer.campaigns import CampaignSpec, create_campaign
    from dialer.lists.importer import import_list
    from warmline import migrate

    migrate.upgrade(db_url)
    db = Database(db_url)
    name = f"bench-{os.getpid()}"
    with db.session() as s:
        create_campaign(s, CampaignSpec(name=name), actor="bench")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(path, "rb") as f:
        started, cpu = time.perf_counter(), time.process_time()
        report = import_list(db, name, f, Path(path).name, actor="bench")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "rows": report.rows, "accepted": report.accepted, "rejected": report.rejected,
                "skipped": report.skipped, "reasons": dict(report.reasons), "seconds": seconds, "cpu": cpu,
                "rss_growth_mb": (peak - before) / 1024, "peak_rss_mb": peak / 1024,
            }
        )
    )  # fmt: skip
    db.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    _child(sys.argv[1], sys.argv[2])
