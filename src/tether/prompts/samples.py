"""A spec's own examples and test inputs are checked when it is loaded, so a template typo or
a misspelt input fails `tether prompts push`, not a production call: every sample's keys are
declared inputs, every sample renders, every example's output meets the contract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.errors import RenderError
from tether.prompts.compiled import CompiledPrompt, Loc, SpecProblem


def check_samples(compiled: CompiledPrompt) -> None:
    spec = compiled.spec
    properties = spec.inputs.get("properties")
    # A spec that declares its inputs is held to them; one that declares none takes any object.
    declared = set(properties) if isinstance(properties, dict) else None
    samples: list[tuple[Loc, Mapping[str, Any]]] = [
        (("examples", i, "inputs"), e.inputs) for i, e in enumerate(spec.examples)
    ] + [(("tests", i, "inputs"), t.inputs) for i, t in enumerate(spec.tests)]
    for loc, inputs in samples:
        unknown = sorted(set(inputs) - declared) if declared is not None else []
        if declared is not None and unknown:
            raise SpecProblem(
                loc,
                f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
                f"declared under inputs.properties ({', '.join(sorted(declared)) or 'none'})",
                fix="declare the input, or correct its name (a comma in an unquoted YAML "
                "flow mapping splits a value into a new key: quote it)",
            )
        try:
            compiled.render(inputs)
        except RenderError as exc:
            raise SpecProblem(loc, f"does not render: {exc.message}", fix=exc.fix) from None
    if compiled.contract is None:
        return
    for index, example in enumerate(spec.examples):
        errors = compiled.contract.validator.errors(example.output)
        if errors:
            raise SpecProblem(
                ("examples", index, "output"),
                "does not meet the output contract: " + "; ".join(errors),
                fix="a few-shot example teaches the model: make it a valid output",
            )
