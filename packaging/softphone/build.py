"""Build the `warmline-softphone` wheel: stage softphone/ and the listed core modules, then `pip wheel`.

    python packaging/softphone/build.py [--out dist]

The wheel is pure Python (py3-none-any): the same file installs on Windows and Linux. It goes to
`--out` (default: dist/ at the repository's root) and its path is printed on the last line.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def core_modules() -> list[str]:
    """The core files the softphone ships (core-modules.txt)."""
    lines = (HERE / "core-modules.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def stage(where: Path) -> Path:
    """A folder holding exactly what the wheel is built from."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(HERE / name, where / name)
    shutil.copytree(ROOT / "softphone", where / "softphone", ignore=IGNORE)
    for module in core_modules():
        (where / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / module, where / module)
    if (ROOT / "core" / "locale").is_dir():
        shutil.copytree(ROOT / "core" / "locale", where / "core" / "locale", ignore=IGNORE)
    return where


def build(out: Path) -> Path:
    staged = stage(ROOT / "var" / "build" / "warmline-softphone")
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("warmline_softphone-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(staged)],
        check=True,
    )
    made = sorted(set(out.glob("warmline_softphone-*.whl")) - before) or sorted(
        out.glob("warmline_softphone-*.whl")
    )
    return max(made, key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the wheel")
    args = parser.parse_args()
    print(build(args.out.resolve()))


if __name__ == "__main__":
    main()
