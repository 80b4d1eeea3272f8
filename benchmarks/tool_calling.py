"""Function calling on the local models: tether's grammar-enforced tool calls vs llama-cpp-python's.

Twelve small tasks, each a user request with four tools offered and one expected call (its
name and arguments). For each bundled local model, in three conditions at temperature 0:

- `tether_required`: `tool_choice: required` through tether (the model picks the tool; its
  chat template renders the tools; the llguidance grammar admits only calls to an offered tool
  whose arguments meet its schema); no repairs, so this is the first attempt's quality;
- `tether_named`: the expected tool named in `tool_choice`, through tether;
- `llamacpp_named`: the same named choice through `Llama.create_chat_completion` (llama-cpp-
  python's handler for the GGUF's chat template: it appends the function name to the prompt and
  constrains the arguments with a GBNF grammar from the parameters' schema).

Scored per call: `valid` (a call to the asked tool whose arguments meet its schema), `right_tool`
and `exact` (the expected arguments: strings compared case-insensitively, numbers as numbers).
Latency is each call's wall time (prompt processing included); conditions alternate per task.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "tool_calling"
MODELS = ("qwen2.5-coder-0.5b-instruct", "gemma-3-270m")
CONDITIONS = ("tether_required", "tether_named", "llamacpp_named")


def _tool(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


TOOLS = [
    _tool(
        "get_weather",
        "Current weather for a city",
        {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    ),
    _tool(
        "convert_currency",
        "Convert an amount of money between currencies (ISO codes)",
        {"amount": {"type": "number"}, "source": {"type": "string"}, "target": {"type": "string"}},
    ),
    _tool("set_timer", "Start a countdown timer", {"minutes": {"type": "integer"}}),
    _tool(
        "send_email",
        "Send a short email",
        {"to": {"type": "string"}, "subject": {"type": "string"}},
    ),
]
WEATHER, MONEY, TIMER, EMAIL = "get_weather", "convert_currency", "set_timer", "send_email"
TASKS: list[tuple[str, str, dict[str, Any]]] = [
    ("What's the weather in Paris in celsius?", WEATHER, {"city": "Paris", "unit": "celsius"}),
    ("Is it hot in Phoenix? Use fahrenheit.", WEATHER, {"city": "Phoenix", "unit": "fahrenheit"}),
    ("Weather for Tokyo please, celsius.", WEATHER, {"city": "Tokyo", "unit": "celsius"}),
    ("Convert 100 USD to EUR.", MONEY, {"amount": 100, "source": "USD", "target": "EUR"}),
    ("How many yen is 25 GBP?", MONEY, {"amount": 25, "source": "GBP", "target": "JPY"}),
    ("Change 12.5 EUR into CHF.", MONEY, {"amount": 12.5, "source": "EUR", "target": "CHF"}),
    ("Set a timer for 10 minutes.", TIMER, {"minutes": 10}),
    ("Start a 45 minute countdown.", TIMER, {"minutes": 45}),
    ("Remind me in 3 minutes with a timer.", TIMER, {"minutes": 3}),
    ("Email bob@example.com, subject Lunch.", EMAIL, {"to": "bob@example.com", "subject": "Lunch"}),
    ("Send ann@corp.io an email titled Budget.", EMAIL, {"to": "ann@corp.io", "subject": "Budget"}),
    ("Write to ops@site.net, subject: Outage.", EMAIL, {"to": "ops@site.net", "subject": "Outage"}),
]


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--tasks", type=int, default=len(TASKS), help="how many of the tasks")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--max-tokens", type=int, default=80)
    return parser.parse_args(argv)


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(got, str) and got.strip().lower() == expected.lower()
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return isinstance(got, int | float) and float(got) == float(expected)
    return bool(got == expected)


def _score(name: str, arguments: str, tool: str, expected: dict[str, Any]) -> dict[str, bool]:
    import jsonschema

    schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == tool)
    try:
        value = json.loads(arguments)
        jsonschema.validate(value, schema)
        valid = True
    except (ValueError, jsonschema.ValidationError):
        value, valid = None, False
    exact = (
        name == tool
        and isinstance(value, dict)
        and value.keys() == expected.keys()
        and all(_same(value[k], v) for k, v in expected.items())
    )
    return {"valid": valid and name == tool, "right_tool": name == tool, "exact": exact}


def _tether(client: Any, model: str, prompt: str, tool: str, named: bool, max_tokens: int) -> Any:
    from tether.messages import Tool, ToolSpec

    tools = tuple(
        Tool(t["function"]["name"], t["function"]["parameters"], t["function"]["description"])
        for t in TOOLS
    )
    spec = ToolSpec(tools, "required", tool if named else None, parallel=False)
    try:
        result = client.generate(
            prompt, model=model, tools=spec, max_repairs=0, max_tokens=max_tokens
        )
    except Exception as exc:  # a call whose arguments failed validation: scored as invalid
        attempts = getattr(exc, "attempts", ())
        return "", attempts[-1].raw if attempts else ""
    call = result.tool_calls[0]
    return call.name, call.arguments


def _peer(llm: Any, prompt: str, tool: str, max_tokens: int) -> tuple[str, str]:
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": tool}},
        temperature=0.0,
        max_tokens=max_tokens,
    )
    calls = out["choices"][0]["message"].get("tool_calls") or []
    if not calls:
        return "", out["choices"][0]["message"].get("content") or ""
    return calls[0]["function"]["name"], calls[0]["function"]["arguments"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from llama_cpp import Llama

    from tether import Client, ModelSettings, Settings
    from tether.providers.gguf_file import bundled_model_file, verify

    cache = Path.home() / ".cache" / "tether"
    settings = Settings(
        data_dir=cache / "bench-data",
        cache_dir=cache,
        default_model=MODELS[0],
        models={
            m: ModelSettings(provider="llamacpp", upstream_model=m, threads=args.threads)
            for m in MODELS
        },
    )
    tasks = TASKS[: args.tasks]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with Client(settings) as client, bench.progress() as bar:
        job = bar.add_task("calls", total=len(MODELS) * len(tasks) * len(CONDITIONS), status="")
        for model in MODELS:
            file = bundled_model_file(model, cache)
            assert file is not None
            path = verify(file, model=model)
            peer = Llama(model_path=str(path), n_ctx=2048, n_threads=args.threads, verbose=False)
            client.generate("hi", model=model, max_tokens=1)  # load before timing
            runs[model] = {c: [] for c in CONDITIONS}
            for index, (prompt, tool, expected) in enumerate(tasks):
                order = CONDITIONS[index % 3 :] + CONDITIONS[: index % 3]
                for condition in order:
                    started = perf_counter()
                    if condition == "llamacpp_named":
                        name, arguments = _peer(peer, prompt, tool, args.max_tokens)
                    else:
                        name, arguments = _tether(
                            client, model, prompt, tool, condition == "tether_named",
                            args.max_tokens,
                        )  # fmt: skip
                    elapsed = perf_counter() - started
                    row = {"task": index, "name": name, "arguments": arguments, "s": elapsed}
                    runs[model][condition].append(
                        {**row, **_score(name, arguments, tool, expected)}
                    )
                    bar.advance(job)
            peer.close()
    table = []
    totals: dict[str, dict[str, dict[str, float]]] = {}
    for model, conditions in runs.items():
        totals[model] = {}
        for condition, rows in conditions.items():
            stats = {
                key: sum(r[key] for r in rows) / len(rows)
                for key in ("valid", "right_tool", "exact")
            }
            stats["median_s"] = statistics.median(r["s"] for r in rows)
            totals[model][condition] = stats
            table.append([model, condition, f"{stats['valid']:.0%}", f"{stats['right_tool']:.0%}",
                          f"{stats['exact']:.0%}", bench.fmt(stats["median_s"], 2)])  # fmt: skip
    default = totals[MODELS[0]]
    value = default["tether_named"]["exact"]
    target = default["llamacpp_named"]["exact"]
    ratio = default["tether_named"]["median_s"] / default["llamacpp_named"]["median_s"]
    payload = {
        "benchmark": NAME,
        "date_utc": bench.utc_now(),
        "method": __doc__,
        "headline": f"exact named-call arguments, tether on {MODELS[0]}",
        "value": value,
        "target": target,
        "target_rule": "at least llama-cpp-python's own named tool choice on the same model",
        "meets_target": value >= target,
        "latency_ratio_tether_to_llamacpp": ratio,
        "tasks": len(tasks),
        "results": totals,
        "runs": runs,
        "machine": bench.machine(),
        "versions": bench.versions("llama_cpp_python", "llguidance", "tether"),
    }
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="Tool calling on the local models",
        header=["model", "condition", "valid", "right tool", "exact args", "median s"],
        rows=table,
        notes=[
            f"median latency ratio tether_named / llamacpp_named on {MODELS[0]}: {ratio:.2f}",
            "valid: a call to the asked tool whose arguments meet its schema; "
            "tether_required lets the model pick among the four tools",
            "latencies on a shared 2-core machine are noisy; compare within a run",
        ],
    )
    return payload


if __name__ == "__main__":
    main()
