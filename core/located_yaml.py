"""YAML loading that remembers where every value came from (line and column, 1-based), so an error
in a flow or a campaign file can say ``file:line:column``.

Mapping keys are kept as the text written in the file, so ``on:`` stays ``"on"`` (YAML 1.1 would
make it ``True``) and digit keys such as ``1:`` stay ``"1"``; as in YAML 1.2, only true/false are
booleans (``yes``, ``no``, ``on``, ``off`` stay words). Duplicate keys, which PyYAML would
silently overwrite, are reported. Used by IVR flows, campaign settings and the inbound numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from core.i18n import _

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int
    column: int


@dataclass
class Located:
    data: Any
    marks: dict[Path_, Mark] = field(default_factory=dict)
    duplicates: list[tuple[Path_, Mark]] = field(default_factory=list)

    def lines(self) -> dict[tuple[str, ...], int]:
        """The line of every key and list item, by its path written as text (``("retry", "0")``),
        as validation errors name them."""
        return {tuple(str(p) for p in path): m.line for path, m in self.marks.items() if path}

    def mark(self, path: Path_) -> Mark | None:
        """The position of ``path``, or of its nearest ancestor the file has."""
        for end in range(len(path), -1, -1):
            found = self.marks.get(path[:end])
            if found is not None:
                return found
        return None


class LocatedYamlError(ValueError):
    """Text that is not YAML: ``message`` for a person, ``problem`` as PyYAML put it, and where."""

    def __init__(self, message: str, mark: Mark | None, problem: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.problem = problem or message


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def load_located(text: str) -> Located:
    """Parse one YAML document; raises LocatedYamlError on a syntax error."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            where = exc.problem_mark or exc.context_mark
            mark = Mark(where.line + 1, where.column + 1) if where else None
            problem = str(exc.problem or exc)
            raise LocatedYamlError(_("YAML syntax: {problem}", problem=problem), mark, problem) from exc
        except yaml.YAMLError as exc:
            raise LocatedYamlError(_("YAML: {problem}", problem=exc), None, str(exc)) from exc
        located = Located(None)
        if root is not None:
            located.data = _build(root, (), loader, located)
        return located
    finally:
        loader.dispose()


def _build(node: yaml.Node, path: Path_, loader: yaml.SafeLoader, out: Located) -> Any:
    out.marks.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            if key in result:
                out.duplicates.append((child, _mark(key_node)))
            else:
                out.marks[child] = _mark(key_node)
            result[key] = _build(value_node, child, loader, out)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), loader, out) for i, item in enumerate(node.value)]
    try:
        value = loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as exc:  # 2026-13-45 looks like a date but is none
        problem = _("'{value}' cannot be read ({error})", value=node.value, error=exc)
        raise LocatedYamlError(_("YAML: {problem}", problem=problem), _mark(node), problem) from exc
    if (
        isinstance(value, bool)
        and isinstance(node, yaml.ScalarNode)
        and node.value.lower() not in ("true", "false")
    ):
        return node.value  # YAML 1.2: yes/no/on/off are words (a node may be called `yes`)
    return value


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def validation_problems(errors: list[Any], lines: dict[tuple[str, ...], int] | None) -> list[str]:
    """Pydantic's errors as ``line N: a.b.c: message``, each at the line of the key at fault.

    A message that starts with a dotted key path (``questions.3.show_if: …``, as a model's own
    whole-object check words it) is placed at that key."""
    from core.validation import error_message, where_text

    out = []
    for err in errors:
        loc = tuple(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = error_message(err)
        head, sep, rest = msg.partition(": ")
        if sep and " " not in head and lines and (*loc, *head.split(".")) in lines:
            loc, msg = (*loc, *head.split(".")), rest
        where = ".".join(loc) or "(top)"
        line = _line_of(loc, lines) if lines else None
        out.append(where_text(line, where, msg))
    return out
