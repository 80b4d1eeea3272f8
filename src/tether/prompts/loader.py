"""Read prompt spec files (YAML). Every error names the file, the line and the field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tether.errors import SpecError
from tether.prompts.compiled import CompiledPrompt, Loc, SpecProblem
from tether.prompts.spec import PromptSpec

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSpec:
    spec: PromptSpec
    compiled: CompiledPrompt
    source: str
    path: str


def load_spec(path: str | Path) -> LoadedSpec:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=str(file), fix="check the path") from None
    return parse_spec(text, source_name=str(file))


def spec_files(paths: Iterable[str | Path], *, recursive: bool = True) -> list[Path]:
    """Spec files named directly, or found (sorted) in the folders named."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            listing = item.rglob("*") if recursive else item.iterdir()
            found += sorted(p for p in listing if p.suffix in SPEC_SUFFIXES and p.is_file())
        else:
            found.append(item)
    return found


def parse_spec(text: str, *, source_name: str) -> LoadedSpec:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=source_name,
            line=mark.line + 1 if mark else None,
            fix="fix the YAML syntax at that line",
        ) from None
    if not isinstance(data, dict):
        raise SpecError("the file must hold a YAML mapping (name, version, ...)", file=source_name)
    try:
        spec = PromptSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise SpecError(
            f"{first['msg']}{more}",
            file=source_name,
            line=_line_of(root, loc),
            field=_dotted(loc),
            fix="remove the field" if first["type"] == "extra_forbidden" else "",
        ) from None
    try:
        compiled = CompiledPrompt.compile(spec)
    except SpecProblem as problem:
        line = _line_of(root, problem.loc)
        if line is not None and problem.template_line:
            line += problem.template_line - 1 + _block_offset(root, problem.loc)
        raise SpecError(
            problem.message, file=source_name, line=line, field=_dotted(problem.loc)
        ) from None
    return LoadedSpec(spec, compiled, text, source_name)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _node_at(root: yaml.Node | None, loc: Loc) -> yaml.Node | None:
    """The deepest YAML node along `loc` (keys of mappings, indexes of sequences)."""
    node = root
    for part in loc:
        child: Any = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node = child
    return node


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def _block_offset(root: yaml.Node | None, loc: Loc) -> int:
    # A block scalar (`|`) starts on the line after its indicator.
    node = _node_at(root, loc)
    return 1 if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">") else 0
