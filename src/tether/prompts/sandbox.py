"""The Jinja2 sandbox prompt templates render in, with bounded sizes.

Jinja2's immutable sandbox refuses internals (`''.__class__`) and caps `range()`; on top of that
no template may build a string, list or number bigger than the caps below, whether with `*`,
`+`, `~`, `**`, `%`, a filter or a method call, and one render emits at most
MAX_RENDERED_CHARS characters. Sizes are checked before the work when they can be predicted
(`"x" * 50000000`), after it otherwise. A refusal is a `TooLarge` (a SecurityError).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

import jinja2
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

# Characters one render may emit, and the size of any one string, list or mapping built on the
# way: a prompt of a million characters is already far past any model's context window.
MAX_RENDERED_CHARS = 1_000_000
# Numbers stay small enough that `**` and `*` cost microseconds.
MAX_INT_BITS = 16_384
# Items all `range()` calls of one render may produce together (nested loops multiply).
MAX_RANGE_ITEMS = 1_000_000

# Filters and str methods whose integer arguments are widths or counts of the output.
_WIDTH_TAKERS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "batch", "slice"})
_MAX_INDENT = 32
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class TooLarge(SecurityError):
    """A template tried to build or emit more than the sandbox allows."""


def _size(value: Any) -> int:
    """Characters and items in `value`, nested ones included (about what printing it takes);
    counting stops just past the cap, so a check never costs more than the cap."""
    total = 0
    stack = [value]
    while stack and total <= MAX_RENDERED_CHARS:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
    return total


def _bounded(value: Any) -> Any:
    if _size(value) > MAX_RENDERED_CHARS:
        raise TooLarge(f"a value of more than {MAX_RENDERED_CHARS:,} items or characters")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TooLarge(f"a number of more than {MAX_INT_BITS:,} bits")
    return value


def _refuse_above(limit: int, size: int, what: str) -> None:
    if size > limit:
        raise TooLarge(f"{what} of {size:,} (at most {limit:,})")


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too big, before computing it."""
    if operator == "*":
        if _int(left) and _int(right):
            _refuse_above(MAX_INT_BITS, left.bit_length() + right.bit_length(), "a product")
        elif _int(right) or _int(left):
            count, seq = (right, left) if _int(right) else (left, right)
            _refuse_above(MAX_RENDERED_CHARS, _size(seq) * max(count, 0), "a repetition")
    elif operator == "+":
        _refuse_above(MAX_RENDERED_CHARS, _size(left) + _size(right), "a concatenation")
    elif operator == "**" and _int(left) and _int(right) and right > 0:
        _refuse_above(MAX_INT_BITS, max(left.bit_length(), 1) * right, "a power")
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right if isinstance(right, tuple) else (right,))


def _check_percent(template: str, args: Iterable[Any]) -> None:
    for width, precision in _PERCENT_SPEC.findall(template):
        for part in (width, precision):
            if part.isdigit():
                _refuse_above(MAX_RENDERED_CHARS, int(part), "a width")
            elif part == "*":
                for arg in args:
                    if _int(arg):
                        _refuse_above(MAX_RENDERED_CHARS, arg, "a width")


def _check_format(template: str) -> None:
    """`str.format` widths live in each field's format spec."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # malformed: str.format itself raises
    for _, _, spec, _ in fields:
        for digits in _DIGITS.findall(spec or ""):
            _refuse_above(MAX_RENDERED_CHARS, int(digits), "a width")


def _check_arguments(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Pre-checks for the calls whose output size follows from their arguments."""
    if name in _WIDTH_TAKERS:
        for arg in (*args, *kwargs.values()):
            if _int(arg):
                _refuse_above(MAX_RENDERED_CHARS, arg, f"a {name} width")
    elif name == "replace" and len(args) >= 2 and isinstance(value, str):
        old, new = str(args[0]), str(args[1])
        places = len(value) + 1 if not old else value.count(old)
        _refuse_above(MAX_RENDERED_CHARS, len(value) + places * len(new), "a replacement")
    elif name == "join":
        # str.join(items) on the separator, or the filter: items|join(separator)
        items, separator = (args[0], value) if isinstance(value, str) and args else (value, "")
        if isinstance(items, list | tuple):
            total = sum(len(str(item)) for item in items) + len(str(separator)) * len(items)
            _refuse_above(MAX_RENDERED_CHARS, total, "a join")
    elif name == "indent" and isinstance(value, str):
        width = args[0] if args else kwargs.get("width", 4)
        per_line = width if _int(width) else len(str(width))
        lines = value.count("\n") + 1
        _refuse_above(MAX_RENDERED_CHARS, len(value) + lines * per_line, "an indentation")
    elif name == "tojson":
        indent = args[0] if args else kwargs.get("indent")
        if _int(indent):
            _refuse_above(_MAX_INDENT, indent, "a tojson indent")  # repeated on every line
    elif name == "format" and isinstance(value, str):
        _check_percent(value, args)


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = getattr(func, "jinja_pass_arg", None)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        rest = args[1:] if pass_arg is not None else args  # after the context, if passed
        value, params = (rest[0], rest[1:]) if rest else (None, ())
        _check_arguments(name, value, params, kwargs)
        return _bounded(func(*args, **kwargs))

    return guarded


class _Budget(Context):
    """A render's context, counting what the render emits and how much it loops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.emitted = 0
        self.ranged = 0


@jinja2.pass_context
def _finalize(context: Context, value: Any) -> Any:
    """Every `{{ ... }}` output, in loops, macros and `{% set %}` blocks too, is counted."""
    if isinstance(context, _Budget):
        context.emitted += _size(value)
        _refuse_above(MAX_RENDERED_CHARS, context.emitted, "rendered output")
    return value


class _Generator(CodeGenerator):
    """Routes `~` through the environment, like the intercepted operators."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:  # noqa: N802 (Jinja visitor name)
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _Generator
    context_class = _Budget

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals.pop("lipsum", None)  # generates any amount of text; no prompt needs it
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _bounded(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            _check_arguments(getattr(obj, "__name__", ""), owner, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if obj is safe_range and isinstance(context, _Budget):
            context.ranged += len(result)
            _refuse_above(MAX_RANGE_ITEMS, context.ranged, "range() items in one render")
        return _bounded(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)
        return wrapped

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        texts = [str(p) for p in parts]
        _refuse_above(MAX_RENDERED_CHARS, sum(map(len, texts)), "a `~` concatenation")
        return "".join(texts)
