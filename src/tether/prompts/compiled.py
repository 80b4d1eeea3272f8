"""A prompt spec checked and compiled once: input validator, output contract, templates.

Templates render in a bounded Jinja2 sandbox (`prompts/sandbox.py`) with StrictUndefined: an
undefined variable is an error, attribute access to internals (`''.__class__`) is refused, no
template can build or emit more than MAX_RENDERED_CHARS characters, and input values are data,
never re-rendered as templates. An `output.model` is imported only from the configured modules
(`prompt_model_modules` in the settings).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from pydantic import BaseModel

from tether.contracts.contract import Contract
from tether.contracts.validator import SchemaValidator
from tether.errors import RenderError, SchemaError, SpecError
from tether.messages import Message
from tether.prompts.sandbox import MAX_RENDERED_CHARS, BoundedSandbox, TooLarge
from tether.prompts.spec import Example, PromptSpec
from tether.settings import DEFAULT_PROMPT_MODEL_MODULES

Loc = tuple[str | int, ...]

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class SpecProblem(SpecError):
    """A problem at a location in the spec. The loader turns it into a SpecError with the file
    and the line; anywhere else it is a SpecError naming the field."""

    def __init__(
        self, loc: Loc, message: str, *, template_line: int | None = None, fix: str = ""
    ) -> None:
        super().__init__(message, file="prompt spec", field=_dotted(loc), fix=fix)
        self.loc = loc
        self.detail = message
        self.template_line = template_line


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _environment() -> jinja2.Environment:
    return BoundedSandbox(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def _schema_loc(base: Loc, exc: SchemaError) -> Loc:
    parts = [p for p in exc.pointer.split("/")[1:] if p]
    return (*base, *(int(p) if p.isdigit() else p for p in parts))


def import_model(
    path: str, allowed: Sequence[str] = DEFAULT_PROMPT_MODEL_MODULES
) -> type[BaseModel]:
    """The Pydantic model at `module:Class`, imported only when `module` is one of `allowed`
    or inside one of them: a spec must not be able to import (and so run) any module."""
    module_name, _, attr = path.partition(":")
    where = ("output", "model")
    if not _MODULE.fullmatch(module_name) or not attr:
        raise SpecProblem(where, f"{path!r} is not module:Class", fix="write it as module:Class")
    if not any(module_name == p or module_name.startswith(p + ".") for p in allowed):
        raise SpecProblem(
            where,
            f"module {module_name!r} is not in prompt_model_modules "
            f"({', '.join(allowed) or 'none'}); it was not imported",
            fix="move the model into one of those packages, or add its package to "
            "prompt_model_modules in the settings",
        )
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SpecProblem(where, f"cannot import {path!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise SpecProblem(where, f"{path!r} is not a Pydantic model class")
    return found


@dataclass(frozen=True, eq=False)
class CompiledPrompt:
    spec: PromptSpec
    contract: Contract[Any] | None
    inputs: SchemaValidator
    templates: tuple[jinja2.Template, ...]

    @classmethod
    def compile(
        cls, spec: PromptSpec, *, model_modules: Sequence[str] = DEFAULT_PROMPT_MODEL_MODULES
    ) -> CompiledPrompt:
        """Check everything that can be checked without a model; raise SpecProblem."""
        try:
            inputs = SchemaValidator(spec.inputs, source="inputs")
        except SchemaError as exc:
            raise SpecProblem(_schema_loc(("inputs",), exc), exc.message) from None
        contract: Contract[Any] | None = None
        if spec.output is not None:
            if spec.output.model:
                contract = Contract.from_model(import_model(spec.output.model, model_modules))
            else:
                assert spec.output.schema_ is not None
                try:
                    contract = Contract.from_schema(spec.output.schema_, name=spec.name)
                except SchemaError as exc:
                    raise SpecProblem(_schema_loc(("output", "schema"), exc), exc.message) from None
        env = _environment()
        templates = []
        for index, message in enumerate(spec.messages):
            try:
                templates.append(env.from_string(message.content))
            except jinja2.TemplateSyntaxError as exc:
                raise SpecProblem(
                    ("messages", index, "content"),
                    f"template syntax: {exc.message}",
                    template_line=exc.lineno,
                ) from None
        compiled = cls(spec, contract, inputs, tuple(templates))
        compiled._check_data()
        return compiled

    def _check_data(self) -> None:
        for index, example in enumerate(self.spec.examples):
            self._check_inputs(example.inputs, ("examples", index, "inputs"))
            if self.contract is not None:
                check, _ = self.contract.check(json.dumps(example.output))
                if not check.ok:
                    raise SpecProblem(
                        ("examples", index, "output"),
                        "does not meet the output contract: " + "; ".join(check.errors),
                    )
        for index, case in enumerate(self.spec.tests):
            self._check_inputs(case.inputs, ("tests", index, "inputs"))

    def _check_inputs(self, values: Mapping[str, Any], loc: Loc) -> None:
        errors = self.inputs.errors(dict(values))
        if errors:
            raise SpecProblem(loc, "inputs do not meet the inputs schema: " + "; ".join(errors))

    # -- rendering ----------------------------------------------------------------------------

    def render(self, inputs: Mapping[str, Any]) -> tuple[Message, ...]:
        """Messages for `inputs`: system messages, then the few-shot examples as user/assistant
        pairs (the last user template rendered with each example's inputs), then the rest."""
        errors = self.inputs.errors(dict(inputs))
        if errors:
            raise RenderError(
                self.spec.name,
                "inputs do not meet the inputs schema: " + "; ".join(errors),
                fix="pass inputs that match the prompt's `inputs` schema",
            )
        system = [i for i, m in enumerate(self.spec.messages) if m.role == "system"]
        rest = [i for i, m in enumerate(self.spec.messages) if m.role != "system"]
        budget = _Budget()
        out = [self._message(i, inputs, budget) for i in system]
        out += self._examples(budget)
        out += [self._message(i, inputs, budget) for i in rest]
        return tuple(out)

    def _examples(self, budget: _Budget) -> list[Message]:
        users = [i for i, m in enumerate(self.spec.messages) if m.role == "user"]
        if not users or not self.spec.examples:
            return []
        template = users[-1]
        shots: list[Message] = []
        for example in self.spec.examples:
            shots.append(self._message(template, example.inputs, budget))
            shots.append(Message("assistant", _as_text(example)))
        return shots

    def _message(self, index: int, inputs: Mapping[str, Any], budget: _Budget) -> Message:
        role = self.spec.messages[index].role
        try:
            pieces = []
            for piece in self.templates[index].generate(**inputs):
                budget.spend(len(piece))
                pieces.append(piece)
            return Message(role, "".join(pieces))
        except jinja2.UndefinedError as exc:
            raise RenderError(
                self.spec.name,
                f"message {index}: {exc.message}",
                fix="pass every variable the template uses, or declare a default in it",
            ) from None
        except TooLarge as exc:
            raise RenderError(
                self.spec.name,
                f"message {index}: the template builds too much: {exc}",
                fix=f"keep a rendered prompt under {MAX_RENDERED_CHARS:,} characters, and the "
                "values a template builds as small",
            ) from None
        except SecurityError as exc:
            raise RenderError(
                self.spec.name,
                f"message {index}: unsafe template operation refused: {exc}",
                fix="templates may only use variables, filters and plain expressions",
            ) from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            raise RenderError(
                self.spec.name,
                f"message {index}: the template failed: {type(exc).__name__}: {exc}",
                fix="check the template's expressions against these inputs",
            ) from None


class _Budget:
    """Characters one render may still emit, across all its messages."""

    def __init__(self) -> None:
        self.left = MAX_RENDERED_CHARS

    def spend(self, chars: int) -> None:
        self.left -= chars
        if self.left < 0:
            raise TooLarge(f"more than {MAX_RENDERED_CHARS:,} characters of rendered output")


def _as_text(example: Example) -> str:
    if isinstance(example.output, str):
        return example.output
    return json.dumps(example.output, ensure_ascii=False, separators=(",", ":"))
