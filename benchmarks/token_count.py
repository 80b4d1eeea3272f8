"""`tether prompts tokens` against the prompt tokens the local model actually consumes.

For every local (llama.cpp) model in the default settings, every version of the example prompt
(prompts/feedback-sentiment/*.yaml) and every test input of it, few-shot as written and zero-shot
(the examples removed, so the call carries tether's schema instruction): the input total of
`token_report` (what `tether prompts tokens` prints) beside the `usage.input_tokens` of the real
call (`provider.complete`, max_tokens=1). Beside it, the count of the messages' text alone, which
is what the report showed before it counted the chat template and the schema instruction.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "token_count"
TARGET = 0.02  # largest relative error allowed
SPECS = bench.REPO_ROOT / "prompts" / "feedback-sentiment"


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument(
        "--models", nargs="*", help="model names from the settings (default: every llamacpp one)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from tether import Client, Settings
    from tether.messages import ProviderCall
    from tether.prompts.compiled import CompiledPrompt
    from tether.prompts.loader import load_spec
    from tether.prompts.tokens import token_report

    started = bench.utc_now()
    machine = bench.machine()
    items: list[dict[str, Any]] = []
    with Client(Settings.load(environ={})) as client:
        models = args.models or [m.name for m in client.models() if m.provider == "llamacpp"]
        for model in models:
            provider = client.provider(model)
            for spec_file in sorted(SPECS.glob("*.yaml")):
                written = load_spec(spec_file).compiled
                zero_shot = CompiledPrompt.compile(written.spec.model_copy(update={"examples": []}))
                for shots, compiled in (("few-shot", written), ("zero-shot", zero_shot)):
                    for case in compiled.spec.tests:
                        plan = client.compiled_plan(compiled, case.inputs, model=model)
                        report = token_report(compiled, plan, case.inputs)
                        params = replace(plan.params, max_tokens=1)
                        call = ProviderCall(plan.messages, params, plan.output)
                        consumed = provider.complete(call).usage.input_tokens
                        text_only = sum(
                            provider.count_tokens(m.content) or 0 for m in call.messages
                        )
                        items.append(
                            {
                                "model": model,
                                "upstream_model": provider.model,
                                "spec": spec_file.name,
                                "shots": shots,
                                "case": case.name,
                                "consumed": consumed,
                                "reported": report.input_tokens,
                                "reported_exact": report.exact,
                                "relative_error": abs(report.input_tokens - consumed) / consumed,
                                "text_only": text_only,
                                "text_only_relative_error": abs(text_only - consumed) / consumed,
                                "parts": {p.name: p.tokens for p in report.parts},
                            }
                        )
                        bench.console.print(
                            f"{model} {spec_file.name} {shots} {case.name}: "
                            f"reported {report.input_tokens}, consumed {consumed}"
                        )
    worst = max(i["relative_error"] for i in items)
    worst_before = max(i["text_only_relative_error"] for i in items)
    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": "tether prompts tokens (token_report) against usage.input_tokens of the real "
        "local call, and the messages' text alone (the former report)",
        "headline": "max relative error of the reported input tokens",
        "value": worst,
        "target": TARGET,
        "target_rule": "<= 0.02",
        "meets_target": worst <= TARGET,
        "date_utc": started,
        "machine": machine,
        "versions": bench.versions("tether", "llama_cpp_python", "tiktoken"),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "max_tokens": 1,
        },
        "method": {
            "reported": "token_report(compiled, client.compiled_plan(compiled, inputs), inputs)"
            ".input_tokens, as `tether prompts tokens` prints it",
            "consumed": "usage.input_tokens of provider.complete on the same plan, max_tokens=1",
            "text_only": "provider.count_tokens over each message's content, summed",
        },
        "cases": len(items),
        "max_relative_error_text_only": worst_before,
        "items": items,
    }
    rows = [
        (
            i["model"],
            i["spec"],
            i["shots"],
            i["case"],
            i["consumed"],
            i["reported"],
            f"{i['relative_error']:.1%}",
            i["text_only"],
            f"{i['text_only_relative_error']:.1%}",
        )
        for i in items
    ]
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="prompts tokens against the tokens the local model consumes",
        header=(
            "model", "spec", "shots", "case", "consumed", "reported", "error",
            "text only", "error (text only)",
        ),
        rows=rows,
        notes=[
            f"{len(items)} cases; max relative error {worst:.2%} (the messages' text alone: "
            f"{worst_before:.1%}).",
            "zero-shot: the spec with its examples removed, so the local model gets tether's "
            "schema instruction.",
        ],
    )  # fmt: skip
    bench.console.print(f"max relative error {worst:.2%} over {len(items)} cases")
    return payload


if __name__ == "__main__":
    main()
