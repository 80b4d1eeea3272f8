"""Read prompt spec files (YAML). Every error names the file, the line and the field.

A spec may arrive in an HTTP body, so the YAML is bounded before it is built: nesting deeper
than MAX_SPEC_DEPTH, or anchors and aliases that expand past MAX_SPEC_NODES, are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tether.contracts.guard import MAX_SCHEMA_DEPTH
from tether.errors import SpecError
from tether.prompts.compiled import CompiledPrompt, Loc, SpecProblem
from tether.prompts.samples import check_samples
from tether.prompts.spec import PromptSpec
from tether.settings import DEFAULT_PROMPT_MODEL_MODULES

SPEC_SUFFIXES = (".yaml", ".yml")
# Room for a schema of the deepest allowed nesting under `output.schema`.
MAX_SPEC_DEPTH = MAX_SCHEMA_DEPTH + 8
# Nodes once every alias is expanded: a few anchors must not multiply into billions.
MAX_SPEC_NODES = 200_000


@dataclass(frozen=True)
class LoadedSpec:
    spec: PromptSpec
    compiled: CompiledPrompt
    source: str
    path: str


def load_spec(
    path: str | Path, *, model_modules: Sequence[str] = DEFAULT_PROMPT_MODEL_MODULES
) -> LoadedSpec:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=str(file), fix="check the path") from None
    return parse_spec(text, source_name=str(file), model_modules=model_modules)


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


def parse_spec(
    text: str,
    *,
    source_name: str,
    model_modules: Sequence[str] = DEFAULT_PROMPT_MODEL_MODULES,
) -> LoadedSpec:
    root, data = _read_yaml(text, source_name)
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
        compiled = CompiledPrompt.compile(spec, model_modules=model_modules)
        check_samples(compiled)
    except SpecProblem as problem:
        line = _line_of(root, problem.loc)
        if line is not None and problem.template_line:
            line += problem.template_line - 1 + _block_offset(root, problem.loc)
        raise SpecError(
            problem.detail,
            file=source_name,
            line=line,
            field=_dotted(problem.loc),
            fix=problem.fix,
        ) from None
    return LoadedSpec(spec, compiled, text, source_name)


def _read_yaml(text: str, source_name: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, once both are known to be bounded."""
    try:
        _check_nesting(text, source_name)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _check_expansion(root, source_name)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=source_name,
            line=mark.line + 1 if mark else None,
            fix="fix the YAML syntax at that line",
        ) from None
    except RecursionError:  # a backstop: the checks above keep construction shallow
        raise _too_deep(source_name, None) from None
    return root, data


def _check_nesting(text: str, source_name: str) -> None:
    """Refuse deep nesting from the event stream, which PyYAML parses without recursion."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                raise _too_deep(source_name, _line(event.start_mark))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, source_name: str) -> None:
    """Count nodes as they will be built, each alias as a full copy; refuse recursive aliases."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            visiting.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[id(node)] > MAX_SPEC_NODES:
                raise SpecError(
                    f"anchors and aliases expand to more than {MAX_SPEC_NODES:,} values",
                    file=source_name,
                    line=_line(node.start_mark),
                    fix="write the repeated parts out, or repeat them less",
                )
            continue
        if id(node) in visiting:
            raise SpecError(
                "an alias refers to the node that contains it",
                file=source_name,
                line=_line(node.start_mark),
                fix="remove the recursive alias",
            )
        visiting.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _too_deep(source_name: str, line: int | None) -> SpecError:
    return SpecError(
        f"nested more than {MAX_SPEC_DEPTH} levels deep",
        file=source_name,
        line=line,
        fix="flatten the structure; a schema can define repeated parts once under $defs",
    )


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
