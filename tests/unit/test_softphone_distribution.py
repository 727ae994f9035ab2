"""The agent's install ships what the softphone imports and nothing of the server: the core modules
listed in packaging/softphone/core-modules.txt are exactly those the softphone reaches (read from the
source with `ast`; a lazy import counts, a TYPE_CHECKING one does not), every third-party module it
imports is a declared requirement, and no server-only requirement is."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging" / "softphone"
# import name -> distribution, where they differ
DISTRIBUTIONS = {
    "Xlib": "python-xlib",
    "pjsua2": "pjsua2-python",
    "pydantic_settings": "pydantic-settings",
    "yaml": "pyyaml",
}
# Jinja2 is shared: the local page is a template in the phone's language (small, pure Python + MarkupSafe).
SERVER_ONLY = {"sqlalchemy", "alembic", "psycopg", "argon2-cffi", "openpyxl", "python-multipart"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by `path`, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _reach() -> tuple[set[str], set[str]]:
    """(core files, third-party top-level modules) reached from every softphone module."""
    todo = [p for p in (ROOT / "softphone").rglob("*.py")]
    seen: set[Path] = set()
    core: set[str] = {"core/__init__.py"}
    third: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ("softphone", "core"):
                parts = name.split(".")
                for n in range(1, len(parts) + 1):  # a package's __init__ runs too
                    found = _module_file(".".join(parts[:n]))
                    if found is not None and found not in seen:
                        todo.append(found)
                        if top == "core":
                            core.add(found.relative_to(ROOT).as_posix())
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return core, third


def _listed() -> set[str]:
    lines = (PACKAGING / "core-modules.txt").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _requirements() -> list[Requirement]:
    data = tomllib.loads((PACKAGING / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


def test_the_listed_core_modules_are_exactly_those_the_softphone_reaches() -> None:
    core, _third = _reach()
    assert core == _listed(), f"update packaging/softphone/core-modules.txt: reached {sorted(core)}"


def test_every_third_party_import_is_a_requirement_and_nothing_of_the_server_is() -> None:
    _core, third = _reach()
    declared = {canonicalize_name(r.name) for r in _requirements()}
    undeclared = {m for m in third if canonicalize_name(DISTRIBUTIONS.get(m, m)) not in declared}
    assert not undeclared, (
        f"the softphone imports {sorted(undeclared)}: add them to packaging/softphone/pyproject.toml"
    )
    assert not declared & {canonicalize_name(s) for s in SERVER_ONLY}
    assert not any(r.extras for r in _requirements()), "no extras: uvicorn[standard] is the server's"


def test_the_softphone_distribution_keeps_the_projects_version_and_python() -> None:
    main = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    agent = tomllib.loads((PACKAGING / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert agent["version"] == main["version"]
    main_reqs = {canonicalize_name(Requirement(r).name): Requirement(r) for r in main["dependencies"]}
    for req in _requirements():  # the same lower bounds as the server's checkout installs
        assert canonicalize_name(req.name) in main_reqs, f"{req.name} is missing from the main pyproject.toml"
        assert str(req.specifier) == str(main_reqs[canonicalize_name(req.name)].specifier), req.name
