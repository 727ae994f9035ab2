"""`warmline ivr check`: every problem of a flow file, each with its place (node, line:column).

Checks: YAML syntax and duplicate keys; the schema of the flow and of every node; unknown next
nodes; nodes unreachable from ``start``; nodes with no way on (a dead end); loops with no exit;
missing prompt files; ``{placeholders}`` and branch fields the campaign's list does not have;
gathers without valid digits (or with digits that lead nowhere); unknown outcomes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from core.i18n import _
from core.located_yaml import Located, LocatedYamlError, Mark, Path_, load_located
from core.validation import error_message
from ivr.flow import (
    DTMF,
    NODE_ID,
    NODE_TYPES,
    STANDARD_OUTCOMES,
    BranchNode,
    Flow,
    FlowHeader,
    GatherNode,
    Node,
    SetOutcomeNode,
    placeholders,
    resolve_prompt_file,
)

_NODE = TypeAdapter(Node)
_RAW_EDGE_KEYS = ("next", "no_input", "invalid", "default", "over_limit")
BUILTIN_VARS = ("last_input", "outcome")


class Problem(BaseModel):
    code: str
    message: str
    node: str | None = None
    path: str = ""
    line: int | None = None
    column: int | None = None
    file: str | None = None

    def text(self) -> str:
        where = self.file or "<flow>"
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        if self.node:
            return _("{where}: [{code}] node '{node}': {message}", where=where, code=self.code, node=self.node,
                     message=self.message)  # fmt: skip
        return _("{where}: [{code}] {message}", where=where, code=self.code, message=self.message)


class FlowError(ValueError):
    """A flow that cannot be used; ``problems`` says what and where."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.text() for p in problems))


class _Checker:
    def __init__(
        self,
        located: Located,
        file: str | None,
        fields: Sequence[str] | None,
        base_dir: Path | None,
        prompt_dirs: tuple[Path, ...],
    ) -> None:
        self.located = located
        self.file = file
        self.cli_fields = list(fields) if fields is not None else None
        self.base_dir = base_dir
        self.prompt_dirs = prompt_dirs
        self.problems: list[Problem] = []

    def add(self, code: str, message: str, path: Path_ = (), node: str | None = None) -> None:
        mark = self.located.mark(path)
        self._add(code, message, path, node, mark)

    def _add(self, code: str, message: str, path: Path_, node: str | None, mark: Mark | None) -> None:
        self.problems.append(
            Problem(
                code=code,
                message=message,
                node=node,
                path=".".join(str(p) for p in path),
                line=mark.line if mark else None,
                column=mark.column if mark else None,
                file=self.file,
            )
        )

    # ------------------------------------------------------------ schema

    def schema_errors(self, exc: ValidationError, prefix: Path_, node: str | None, raw: Any) -> None:
        for err in exc.errors():
            loc: list[str | int] = list(err["loc"])
            if node is not None and loc and isinstance(raw, dict) and loc[0] == raw.get("type"):
                loc = loc[1:]
            kind = err["type"]
            if kind == "union_tag_invalid":
                message = _(
                    "unknown node type '{type}'; use one of {types}",
                    type=raw.get("type"),
                    types=", ".join(NODE_TYPES),
                )
                loc = ["type"]
            elif kind == "union_tag_not_found":
                message = _("node has no `type`; use one of {types}", types=", ".join(NODE_TYPES))
            elif kind == "missing":
                message = _("`{key}` is required", key=loc[-1]) if loc else _("a value is required")
            elif kind == "extra_forbidden":
                message = _("unknown key `{key}`", key=loc[-1])
            else:
                message = error_message(err)
                if loc:
                    message = f"`{'.'.join(str(p) for p in loc)}`: {message}"
            self.add("schema", message, (*prefix, *loc), node)

    # ------------------------------------------------------------ the whole check

    def run(self) -> Flow | None:
        for path, mark in self.located.duplicates:
            self._add(
                "duplicate_key",
                _("`{key}` is given twice; the later one would win", key=path[-1]),
                path,
                None,
                mark,
            )
        data = self.located.data
        if not isinstance(data, dict):
            self.add("schema", _("a flow is a YAML mapping with name, start and nodes"))
            return None
        header: FlowHeader | None = None
        try:
            header = FlowHeader.model_validate({k: v for k, v in data.items() if k != "nodes"})
        except ValidationError as exc:
            self.schema_errors(exc, (), None, data)
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            self.add("schema", _("`nodes` must be a mapping of node id to node"), ("nodes",))
            return None

        nodes: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        for node_id, raw in raw_nodes.items():
            if not re.match(NODE_ID, node_id):
                self.add(
                    "schema",
                    _("node id '{node}': use letters, digits, _ and -", node=node_id),
                    ("nodes", node_id),
                )
            try:
                node = _NODE.validate_python(raw)
            except ValidationError as exc:
                failed[node_id] = raw
                self.schema_errors(exc, ("nodes", node_id), node_id, raw)
                continue
            node.id = node_id
            nodes[node_id] = node

        fields = self.available_fields(header)
        self.graph(header, nodes, failed)
        for node_id, node in nodes.items():
            self.node_checks(node_id, node, nodes, fields, header)
        if header is None or failed or any(p.code == "schema" for p in self.problems):
            return None
        try:
            return Flow.model_validate(data)
        except ValidationError as exc:  # pragma: no cover - the parts above validated already
            self.schema_errors(exc, (), None, data)
            return None

    def available_fields(self, header: FlowHeader | None) -> list[str] | None:
        declared = header.fields if header is not None else []
        if self.cli_fields is None:
            return declared or None
        for i, name in enumerate(declared):
            if name not in self.cli_fields:
                self.add(
                    "unknown_field",
                    _(
                        "the flow needs field '{name}', which the list does not have (list columns: {columns})",
                        name=name,
                        columns=", ".join(self.cli_fields) or _("none"),
                    ),
                    ("fields", i),
                )
        return self.cli_fields

    # ------------------------------------------------------------ graph

    def graph(self, header: FlowHeader | None, nodes: dict[str, Any], failed: dict[str, Any]) -> None:
        order = list(self.located.data["nodes"])  # file order, for stable reports
        known = set(order)
        edges: dict[str, list[str]] = {n: [] for n in order}
        for node_id, node in nodes.items():
            for where, target in node.edges():
                if target in known:
                    edges[node_id].append(target)
                else:
                    self.add(
                        "unknown_node",
                        _(
                            "`{key}` goes to node '{target}', which does not exist",
                            key=".".join(where),
                            target=target,
                        ),
                        ("nodes", node_id, *where),
                        node_id,
                    )
        for node_id, raw in failed.items():  # best effort, so one bad node does not hide others
            edges[node_id] = [t for t in _raw_targets(raw) if t in known]

        start = header.start if header is not None else None
        if start is not None and start not in known:
            self.add("unknown_node", _("start node '{start}' does not exist", start=start), ("start",))
            start = None
        if start is None:
            return
        reached = _reach([start], edges)
        for node_id in edges:
            if node_id not in reached:
                self.add(
                    "unreachable",
                    _("cannot be reached from start '{start}'", start=start),
                    ("nodes", node_id),
                    node_id,
                )

        endings = {n for n, node in nodes.items() if node.ends_call} | set(failed)
        dead_ends: set[str] = set()
        for node_id, node in nodes.items():
            missing = node.successor_required()
            if missing is not None:
                dead_ends.add(node_id)
                self.add(
                    "no_ending",
                    _(
                        "{type} node has no `{key}`: the call would stop here without an ending (point `{key}` at"
                        " the next node, e.g. a hangup node)",
                        type=node.type,
                        key=missing,
                    ),
                    ("nodes", node_id),
                    node_id,
                )
        reverse: dict[str, list[str]] = {n: [] for n in edges}
        for src, targets in edges.items():
            for t in targets:
                reverse[t].append(src)
        can_end = _reach(endings, reverse)
        loops = 0
        for scc in _sccs(edges):
            members = set(scc)
            cyclic = len(scc) > 1 or scc[0] in edges[scc[0]]
            exits = any(t not in members for m in scc for t in edges[m])
            if cyclic and not exits and not members & endings:
                loops += 1
                first = min(scc, key=order.index)
                cycle = _cycle_text(first, members, edges)
                self.add(
                    "loop_no_exit",
                    _("loop with no exit: {cycle}; nothing in it leads to a hangup or transfer", cycle=cycle),
                    ("nodes", first),
                    first,
                )
        unknown = any(p.code == "unknown_node" for p in self.problems)
        if start not in can_end and not dead_ends and not loops and not unknown:
            self.add(
                "no_ending",
                _("no path from start '{start}' leads to a hangup or transfer", start=start),
                ("start",),
            )

    # ------------------------------------------------------------ per node

    def node_checks(
        self,
        node_id: str,
        node: Any,
        nodes: dict[str, Any],
        fields: list[str] | None,
        header: FlowHeader | None,
    ) -> None:
        base: Path_ = ("nodes", node_id)
        if (node.max_visits is None) != (node.over_limit is None):
            self.add(
                "schema",
                _("`max_visits` and `over_limit` go together (how many visits, and where to go after)"),
                (*base, "max_visits" if node.max_visits is not None else "over_limit"),
                node_id,
            )
        for where, prompt in node.prompts():
            self.prompt_checks(node_id, (*base, *where), prompt.say, prompt.file, fields)
        if isinstance(node, GatherNode):
            self.gather_checks(node_id, node)
        elif isinstance(node, BranchNode):
            self.branch_checks(node_id, node, nodes, fields)
        elif isinstance(node, SetOutcomeNode) and header is not None:
            known = set(header.outcomes) | set(STANDARD_OUTCOMES)
            if node.outcome not in known:
                self.add(
                    "unknown_outcome",
                    _(
                        "outcome '{outcome}' is neither standard ({standard}) nor declared under `outcomes:`",
                        outcome=node.outcome,
                        standard=", ".join(sorted(STANDARD_OUTCOMES)),
                    ),
                    (*base, "outcome"),
                    node_id,
                )

    def prompt_checks(
        self, node_id: str, path: Path_, say: str | None, file: str | None, fields: list[str] | None
    ) -> None:
        if file is not None:
            if resolve_prompt_file(file, self.base_dir, self.prompt_dirs) is None:
                looked = [str(d) for d in ([self.base_dir] if self.base_dir else []) + list(self.prompt_dirs)]
                self.add(
                    "missing_prompt",
                    _(
                        "prompt file '{file}' not found (looked in: {folders})",
                        file=file,
                        folders=", ".join(looked) or _("nowhere"),
                    ),
                    path,
                    node_id,
                )
            return
        if say is None:
            return
        names, bad = placeholders(say)
        for token in bad:
            self.add(
                "placeholder",
                _(
                    "malformed placeholder '{token}'; write {example} (or {brace} for a brace)",
                    token=token,
                    example="{field}",
                    brace="{{",
                ),
                path,
                node_id,
            )
        if fields is None:
            return
        for name in names:
            if name not in fields:
                self.add(
                    "unknown_field",
                    _(
                        "{placeholder} is not a field of the campaign's list (fields: {fields})",
                        placeholder="{" + name + "}",
                        fields=", ".join(fields) or _("none"),
                    ),
                    path,
                    node_id,
                )

    def gather_checks(self, node_id: str, node: GatherNode) -> None:
        base: Path_ = ("nodes", node_id)
        entries = node.valid_entries()
        if not entries:
            self.add(
                "no_valid_digits", _("gather has no valid digits: give `valid:` or `on:`"), base, node_id
            )
        for i, entry in enumerate(entries):
            where: Path_ = (*base, "valid", i) if node.valid is not None else (*base, "on", entry)
            if not DTMF.match(entry):
                self.add(
                    "schema", _("'{entry}' is not a key sequence (0-9, * and #)", entry=entry), where, node_id
                )
            elif len(entry) > node.max_digits:
                self.add(
                    "schema",
                    _("'{entry}' is longer than max_digits {most}", entry=entry, most=node.max_digits),
                    where,
                    node_id,
                )
            elif node.terminator is not None and node.terminator in entry:
                self.add(
                    "schema",
                    _("'{entry}' contains the terminator {key}", entry=entry, key=node.terminator),
                    where,
                    node_id,
                )
            if node.target_for(entry) is None:
                self.add(
                    "no_target",
                    _("valid entry '{entry}' leads nowhere: add it to `on` or give `next`", entry=entry),
                    where,
                    node_id,
                )
        if node.valid is not None:
            for digit in node.on:
                if digit not in node.valid:
                    self.add(
                        "invalid_digit",
                        _("`on.{digit}` is not among the valid digits", digit=digit),
                        (*base, "on", digit),
                        node_id,
                    )

    def branch_checks(
        self, node_id: str, node: BranchNode, nodes: dict[str, Any], fields: list[str] | None
    ) -> None:
        name = node.field
        path: Path_ = ("nodes", node_id, "field")
        if name.startswith("input."):
            gather = name.removeprefix("input.")
            if not isinstance(nodes.get(gather), GatherNode):
                self.add(
                    "unknown_field",
                    _("'{name}': there is no gather node '{gather}'", name=name, gather=gather),
                    path,
                    node_id,
                )
            return
        if name in BUILTIN_VARS or fields is None:
            return
        if name not in fields:
            self.add(
                "unknown_field",
                _(
                    "branch on '{name}', which is not a field of the campaign's list (fields: {fields}; variables:"
                    " {variables})",
                    name=name,
                    fields=", ".join(fields) or _("none"),
                    variables=", ".join((*BUILTIN_VARS, "input.<gather>")),
                ),
                path,
                node_id,
            )


def _raw_targets(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return []
    found = [raw[k] for k in _RAW_EDGE_KEYS if isinstance(raw.get(k), str)]
    for key in ("on", "cases"):
        if isinstance(raw.get(key), dict):
            found += [v for v in raw[key].values() if isinstance(v, str)]
    return found


def _reach(roots: Iterable[str], edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [r for r in roots if r in edges]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(edges[n])
    return seen


def _sccs(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            result.append(scc[::-1])

    for v in edges:
        if v not in index:
            visit(v)
    return result


def _cycle_text(first: str, members: set[str], edges: dict[str, list[str]]) -> str:
    path = [first]
    current = first
    while True:
        nxt = next(t for t in edges[current] if t in members)
        path.append(nxt)
        if nxt == first or nxt in path[:-1] or len(path) > len(members) + 1:
            break
        current = nxt
    return " -> ".join(path)


# ------------------------------------------------------------------ public API


def check_text(
    text: str,
    *,
    source: Path | None = None,
    fields: Sequence[str] | None = None,
    prompt_dirs: Sequence[Path] = (),
) -> tuple[Flow | None, list[Problem]]:
    """Check flow YAML; returns the flow (None when its schema is broken) and every problem."""
    file = str(source) if source is not None else None
    base_dir = source.resolve().parent if source is not None else None
    try:
        located = load_located(text)
    except LocatedYamlError as exc:
        mark = exc.mark
        return None, [
            Problem(
                code="yaml",
                message=exc.message,
                line=mark.line if mark else None,
                column=mark.column if mark else None,
                file=file,
            )
        ]
    checker = _Checker(located, file, fields, base_dir, tuple(prompt_dirs))
    flow = checker.run()
    if flow is not None:
        flow.with_source(source)
    problems = sorted(checker.problems, key=lambda p: (p.line or 0, p.column or 0, p.code))
    return flow, problems


def check_file(
    path: Path, *, fields: Sequence[str] | None = None, prompt_dirs: Sequence[Path] = ()
) -> tuple[Flow | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(code="file", message=_("cannot read: {error}", error=exc), file=str(path))]
    return check_text(text, source=path, fields=fields, prompt_dirs=prompt_dirs)


def load_flow(path: Path, *, fields: Sequence[str] | None = None, prompt_dirs: Sequence[Path] = ()) -> Flow:
    """A flow that passed every check; raises FlowError listing every problem otherwise."""
    flow, problems = check_file(path, fields=fields, prompt_dirs=prompt_dirs)
    if problems or flow is None:
        raise FlowError(problems)
    return flow


REPO_FLOWS = Path(__file__).resolve().parents[1] / "config" / "ivr"


def flow_dirs(var_dir: Path) -> list[Path]:
    """Where flows are looked up by name: the deployment's own (``var/flows``), then the shipped ones."""
    return [var_dir / "flows", REPO_FLOWS]


def find_flow(var_dir: Path, name: str) -> Path | None:
    """A flow by name: NAME.yaml (also with '-' and '_' swapped) in var/flows, then config/ivr."""
    for folder in flow_dirs(var_dir):
        for stem in dict.fromkeys((name, name.replace("-", "_"), name.replace("_", "-"))):
            path = folder / f"{stem}.yaml"
            if path.is_file():
                return path
    return None
