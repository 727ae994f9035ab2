"""Does every dependency of the softphone resolve to wheels for a platform and Python? (CI runs it.)

    python packaging/softphone/check_wheels.py --platform win_amd64 --python 3.11 [--cache DIR]

`pip download --only-binary=:all: --platform … --python-version …` resolves the softphone's
requirements to wheels of that platform. pip evaluates environment markers for *this* machine,
though, so the check does the markers itself: the softphone's own requirements are filtered for the
target (cytolk and comtypes in, python-xlib out, for Windows), and every downloaded wheel's own
requirements are read from its METADATA and evaluated for the target, and anything missing is
fetched too, until the set is closed. A requirement with no wheel for the target fails the check,
named. Wheels are kept in the cache (default var/cache/softphone-wheels/<platform>-<python>), and
the next run first tries the cache alone (`--no-index`), so it is offline and fast.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TARGETS = {
    "win_amd64": {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
    },
    "manylinux2014_x86_64": {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    },
}


def environment(platform: str, python: str) -> dict[str, str]:
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(TARGETS[platform])
    env.update(python_version=python, python_full_version=f"{python}.0", implementation_name="cpython")
    env["platform_python_implementation"] = "CPython"
    return env


def requirements(pyproject: Path = HERE / "pyproject.toml") -> list[Requirement]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


def for_target(reqs: list[Requirement], env: dict[str, str]) -> list[str]:
    """The requirements that apply on the target, without their markers (pip would judge them here)."""
    wanted = []
    for req in reqs:
        if not applies(req, env, set()):
            continue
        extra = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        wanted.append(f"{req.name}{extra}{req.specifier}")
    return wanted


def pip_download(specs: list[str], dest: Path, platform: str, python: str, *, offline: bool) -> bool:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), "--only-binary=:all:"]
    cmd += ["--platform", platform, "--python-version", python, "--implementation", "cp"]
    if offline:
        cmd += ["--no-index", "--find-links", str(dest)]
    done = subprocess.run([*cmd, *specs], capture_output=True, text=True, check=False)
    if done.returncode != 0 and not offline:
        sys.stderr.write(done.stdout + done.stderr)
    return done.returncode == 0


def wheel_requirements(wheel: Path) -> tuple[str, list[Requirement]]:
    """A wheel's project name and its Requires-Dist."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(z.read(meta).decode("utf-8"))
    return message["Name"], [Requirement(r) for r in message.get_all("Requires-Dist") or []]


def applies(req: Requirement, env: dict[str, str], extras: set[str]) -> bool:
    return req.marker is None or any(req.marker.evaluate({**env, "extra": x}) for x in {"", *extras})


def missing_in_closure(dest: Path, env: dict[str, str], top: list[Requirement]) -> list[str]:
    """Requirements (of the softphone or of a wheel in `dest`) that apply on the target and that no
    wheel in `dest` satisfies."""
    have: dict[str, str] = {}
    for wheel in dest.glob("*.whl"):
        name, version, _build, _tags = parse_wheel_filename(wheel.name)
        have[canonicalize_name(name)] = str(version)
    wanted = list(top)
    extras: dict[str, set[str]] = {}
    for req in top:
        extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    for wheel in dest.glob("*.whl"):
        project, reqs = wheel_requirements(wheel)
        wanted += [r for r in reqs if applies(r, env, extras.get(canonicalize_name(project), set()))]
    missing = {
        str(Requirement(f"{req.name}{req.specifier}"))
        for req in wanted
        if not req.specifier.contains(have.get(canonicalize_name(req.name), "0.0.0.dev0"), prereleases=True)
        or canonicalize_name(req.name) not in have
    }
    return sorted(missing)


def check(platform: str, python: str, cache: Path) -> list[str]:
    """Problems (requirements with no wheel for the target); empty when everything resolves."""
    env = environment(platform, python)
    top = [r for r in requirements() if r.marker is None or r.marker.evaluate(env)]
    specs = for_target(top, env)
    dest = cache / f"{platform}-cp{python.replace('.', '')}"
    dest.mkdir(parents=True, exist_ok=True)
    if not pip_download(specs, dest, platform, python, offline=True) and not pip_download(
        specs, dest, platform, python, offline=False
    ):
        return [
            f"pip could not resolve the softphone's requirements to {platform} wheels for Python {python}"
        ]
    for _round in range(10):  # each round fetches what the last round's wheels need on the target
        missing = missing_in_closure(dest, env, top)
        if not missing:
            return []
        if not pip_download(missing, dest, platform, python, offline=True) and not pip_download(
            missing, dest, platform, python, offline=False
        ):
            return [f"no {platform} wheel for Python {python}: {', '.join(missing)}"]
    return [f"the requirements of the {platform} wheels did not settle: {', '.join(missing)}"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", default="win_amd64", choices=sorted(TARGETS))
    parser.add_argument("--python", action="append", help="e.g. 3.11 (repeatable; default 3.11 and 3.12)")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "softphone-wheels")
    args = parser.parse_args()
    problems = [p for py in args.python or ["3.11", "3.12"] for p in check(args.platform, py, args.cache)]
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(
            f"every softphone dependency has a {args.platform} wheel for Python {', '.join(args.python or ['3.11', '3.12'])}"
        )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
