"""A rule's user function, "module:function", imported only from the allow-list.

The allow-list is the settings' `prompt_model_modules`, the same one a prompt spec's
`output.model` is imported from (`tether.prompts.compiled.import_model`): a settings file must
not be able to import, and so run, an arbitrary module.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence

from tether.errors import ConfigError
from tether.routing.base import RouteInput

RuleFunction = Callable[[RouteInput], bool]

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_allowed(module_name: str, allowed: Sequence[str]) -> bool:
    """`module_name` is one of `allowed` or a module inside one of them."""
    return any(module_name == p or module_name.startswith(p + ".") for p in allowed)


def import_function(path: str, allowed: Sequence[str], *, field: str) -> RuleFunction:
    """The callable at `module:function`; nothing is imported unless the module is allowed."""
    module_name, _, attr = path.partition(":")
    if not _MODULE.fullmatch(module_name) or not _NAME.fullmatch(attr):
        raise ConfigError(
            f"{path!r} is not module:function", file=None, field=field, fix="write module:function"
        )
    if not is_allowed(module_name, allowed):
        raise ConfigError(
            f"module {module_name!r} is not in prompt_model_modules "
            f"({', '.join(allowed) or 'none'}); it was not imported",
            file=None,
            field=field,
            fix="move the function into one of those packages, or add its package to "
            "prompt_model_modules in the settings",
        )
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"cannot import {path!r}: {exc}", file=None, field=field, fix="check the path"
        ) from None
    if not callable(found) or isinstance(found, type):
        raise ConfigError(
            f"{path!r} is not a function",
            file=None,
            field=field,
            fix="name a function that takes a RouteInput and returns bool",
        )
    function: RuleFunction = found
    return function
