"""The layout holds: imports point downward only (`warmline` → features → `core`), features use one
another only where the domain says so and never in a cycle, and nothing reaches a module by the
back door (`importlib`, listeners registered at import time). Read from the source with `ast`, so a
lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = "core"
ROOT_PACKAGE = "warmline"
FEATURES = ("agents", "dialer", "hotline", "ivr", "recordings", "softphone", "workforce")
PACKAGES = (CORE, *FEATURES, ROOT_PACKAGE)

# Feature → feature imports the domain asks for. Every feature may import core; softphone nothing
# else (it runs on the agent's PC and knows the server only through its API and the bus).
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("dialer", "ivr"),  # an answered call plays an IVR flow
        ("dialer", "agents"),  # ... or is handed to an agent
        ("agents", "recordings"),  # the hand-over records the call's audio
        ("hotline", "agents"),
        ("hotline", "ivr"),
        ("hotline", "dialer"),  # callbacks are a campaign's contacts
        ("workforce", "agents"),  # hours from the agents' state ledger and targets
        ("workforce", "hotline"),  # the lines and their service level targets
        ("workforce", "dialer"),  # overtime warnings are raised as alerts (dialer.welfare)
        ("workforce", "ivr"),  # satisfaction in reports: the post-call survey's scores
        ("workforce", "recordings"),  # practice calls are recorded and scored like any call
    }
)

# TEMPORARY: imports being removed. Delete an entry as soon as its import is gone -- the test
# below fails while a stale one remains.
TEMPORARY: frozenset[tuple[str, str]] = frozenset()

LISTENER_CALLS = {"listen", "listens_for"}
IMPORTERS = {"import_module", "__import__"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing package
    target: str  # the imported package (a project package)
    module: str  # the imported module, as written (resolved when relative)
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.module}"


@cache
def modules() -> tuple[tuple[str, Path, ast.Module], ...]:
    """(package, file, syntax tree) of every module of the project's packages."""
    found = []
    for package in PACKAGES:
        folder = ROOT / package
        if not folder.is_dir():  # hotline may not exist in every checkout
            continue
        for path in sorted(folder.rglob("*.py")):
            found.append((package, path, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return tuple(found)


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _resolve(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path)[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@cache
def project_imports() -> tuple[Import, ...]:
    found = []
    for package, path, tree in modules():
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [_resolve(node, path)]
            else:
                continue
            for name in names:
                target = name.split(".")[0]
                if target in PACKAGES and target != package:
                    found.append(Import(package, target, name, f"{rel}:{node.lineno}"))
    return tuple(found)


def _edges(imports: tuple[Import, ...]) -> set[tuple[str, str]]:
    return {(i.source, i.target) for i in imports}


def test_core_imports_no_feature_and_not_the_root() -> None:
    wrong = [str(i) for i in project_imports() if i.source == CORE]
    assert not wrong, "core is the lower layer; it imports no feature and not warmline:\n" + "\n".join(wrong)


def test_no_feature_imports_the_root() -> None:
    wrong = [str(i) for i in project_imports() if i.source in FEATURES and i.target == ROOT_PACKAGE]
    assert not wrong, "warmline composes the features; they never import it:\n" + "\n".join(wrong)


def test_features_import_one_another_only_where_allowed() -> None:
    wrong = [
        str(i)
        for i in project_imports()
        if i.source in FEATURES and i.target in FEATURES and (i.source, i.target) not in ALLOWED | TEMPORARY
    ]
    assert not wrong, "an import between features that ALLOWED does not name:\n" + "\n".join(wrong)


def test_temporary_exceptions_are_still_needed() -> None:
    stale = TEMPORARY - _edges(project_imports())
    assert not stale, f"these imports are gone: remove them from TEMPORARY in this test: {sorted(stale)}"


def _cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [*path, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_cycle_between_packages() -> None:
    edges = _edges(project_imports()) - TEMPORARY
    cycle = _cycle(edges)
    assert cycle is None, "packages import each other in a cycle: " + " → ".join(cycle or [])
    assert _cycle(set(ALLOWED)) is None, "ALLOWED itself must not allow a cycle"


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert _cycle({("a", "b"), ("b", "c"), ("a", "c")}) is None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def test_no_module_is_reached_by_importlib() -> None:
    wrong = []
    for _package, path, tree in modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _call_name(node) in IMPORTERS and node.args):
                continue
            arg = node.args[0]
            name = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
            if name is None or name.split(".")[0] in PACKAGES:
                shown = name if name is not None else "a computed name"
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {shown} by importlib")
    assert not wrong, "import project modules with an import statement:\n" + "\n".join(wrong)


def _sqlalchemy_event_names(tree: ast.Module) -> set[str]:
    """Names under which this module can reach sqlalchemy.event or its listen functions."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("sqlalchemy", "sqlalchemy.event"):
            for alias in node.names:
                if alias.name in ("event", *LISTENER_CALLS):
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "sqlalchemy.event"}
    return names


def _is_listener(node: ast.expr, names: set[str]) -> bool:
    call = node.func if isinstance(node, ast.Call) else node
    if isinstance(call, ast.Attribute) and call.attr in LISTENER_CALLS:
        return isinstance(call.value, ast.Name) and call.value.id in names | {"event"}
    return isinstance(call, ast.Name) and call.id in names & LISTENER_CALLS


def test_features_register_no_listener_at_import_time() -> None:
    wrong = []
    for package, path, tree in modules():
        if package not in FEATURES:
            continue
        names = _sqlalchemy_event_names(tree)
        for node in tree.body:  # module level only: a listener set up by a function is explicit
            hits = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                hits = [d for d in node.decorator_list if _is_listener(d, names)]
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                hits = [node.value] if _is_listener(node.value, names) else []
            wrong += [f"{path.relative_to(ROOT)}:{hit.lineno}" for hit in hits]
    assert not wrong, "a listener registered at import time (make it explicit):\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from sqlalchemy import event\n@event.listens_for(Session, 'after_commit')\ndef f(s): pass\n", True),
        ("from sqlalchemy.event import listens_for\n@listens_for(Session, 'x')\ndef f(s): pass\n", True),
        ("from sqlalchemy import event\nevent.listen(Session, 'x', f)\n", True),
        ("from sqlalchemy import event\ndef setup():\n    event.listen(Session, 'x', f)\n", False),
    ],
)
def test_the_listener_check_sees_each_form(source: str, expected: bool) -> None:
    tree = ast.parse(source)
    names = _sqlalchemy_event_names(tree)
    hits = [
        n
        for n in tree.body
        if (isinstance(n, ast.FunctionDef) and any(_is_listener(d, names) for d in n.decorator_list))
        or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and _is_listener(n.value, names))
    ]
    assert bool(hits) is expected


def test_the_readme_layout_names_every_package_folder() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1]
    first_cells = [line.split("|")[1] for line in layout.splitlines() if line.startswith("|")]
    named = {name for cell in first_cells for name in re.findall(r"`([\w.-]+)/`", cell)}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - named == set(), "README's layout table misses these folders"
    assert {n for n in named if not (ROOT / n).is_dir()} == set(), (
        "README's layout names folders that are gone"
    )
