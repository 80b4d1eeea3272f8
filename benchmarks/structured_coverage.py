"""Structured-output coverage on real schemas: tether's local engine vs llama.cpp's own grammar.

A fixed selection of maskbench schemas (sorted file names, evenly spaced: index i*N//count) is
given to a bundled local model (--model: Qwen2.5-Coder-0.5B-Instruct, the default, or Gemma 3
270M; n_ctx 4096, temperature 0) twice, in the model's chat template where it has one (as
tether renders it), else as plain text:

- `tether`: the schema goes through tether's engine path: `Contract.from_schema` (tether's
  SchemaValidator must compile it), `enforcement_schema()`, `compile_json_schema` (llguidance),
  then `create_completion` with `GrammarConstraint` as the logits processor, exactly as
  `LlamaCppProvider.complete` does; the text is checked with the contract's SchemaValidator.
- `llamacpp_grammar`: `LlamaGrammar.from_json_schema(json.dumps(schema))` as `grammar=`; the
  grammar is first parsed by `llama_sampler_init_grammar` on its own (a NULL result is a compile
  failure: passing it on would crash llama-cpp-python); the text is checked against the original
  schema with tether's SchemaValidator (jsonschema where that cannot compile the schema).

A schema counts for an engine when it compiles and the single attempt yields a valid instance;
a compile failure, an invalid output, hitting --max-tokens or the per-attempt --time-cap is a
miss. Progress is appended to a JSONL checkpoint, so a crash (llama.cpp aborts on some grammars)
or an interruption resumes where it stopped; an attempt that started but never finished is
retried once, and recorded as a crash (a miss) if it dies again.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "structured_coverage"
ENGINES = ("tether", "llamacpp_grammar")
INSTRUCTION = (
    "Reply with a single JSON value, no other text, that meets this JSON Schema:\n{schema}\n"
    "\nOutput:"
)


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--count", type=int, default=200, help="schemas to try")
    parser.add_argument("--max-tokens", type=int, default=200, help="cap per attempt")
    parser.add_argument(
        "--time-cap",
        type=float,
        default=20.0,
        help="seconds of generation per attempt (prompt processing not counted)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model",
        default="qwen2.5-coder-0.5b-instruct",
        help="bundled local model: qwen2.5-coder-0.5b-instruct or gemma-3-270m",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="comma-separated engines to run (a run with one has no side-by-side ratio)",
    )
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the checkpoint of an earlier run"
    )
    parser.add_argument(
        "--retry-time-capped",
        action="store_true",
        help="resuming, run again the attempts the time cap cut (a shared machine's other load "
        "can slow generation many times over); the count retried is recorded",
    )
    parser.add_argument(
        "--from-results",
        type=Path,
        default=None,
        help="measure nothing: recompute the summary from the per-schema records of an earlier "
        "results JSON (same parameters)",
    )
    return parser.parse_args(argv)


ALONE_TARGET = 0.8  # the share a run without the peer is held to
MODEL_NAMES = {
    "qwen2.5-coder-0.5b-instruct": "Qwen2.5-Coder-0.5B-Instruct",
    "gemma-3-270m": "Gemma 3 270M",
}


def engines_of(args: Any) -> tuple[str, ...]:
    chosen = tuple(e for e in ENGINES if e in args.engines.split(","))
    if "tether" not in chosen:
        raise SystemExit(f"--engines: run tether, optionally with the others of {ENGINES}")
    return chosen


def select(files: list[Path], count: int) -> list[Path]:
    n = len(files)
    if count >= n:
        return files
    return [files[i * n // count] for i in range(count)]


def source_of(name: str) -> str:
    """The maskbench source (with Github's difficulty); the JME files are one source."""
    base = name.split("---", 1)[0]
    return "JME" if base.startswith("JME_") else base


RUNAWAY = re.compile(r"\d{30}")  # a number that never ends: the model repeats a digit


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.from_results is not None:
        return resummarize(args)
    import llama_cpp

    from tether.contracts.contract import Contract
    from tether.contracts.validator import SchemaValidator
    from tether.messages import Message
    from tether.providers.grammar import GrammarConstraint, compile_json_schema
    from validation import build_jsonschema

    engines = engines_of(args)
    started = bench.utc_now()
    machine = bench.machine()
    folder = bench.check_data(args.data, "schemas", "maskbench")
    chosen = select(sorted(folder.glob("*.json")), args.count)

    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / f"{NAME}.partial.jsonl"
    params = {
        "count": args.count,
        "max_tokens": args.max_tokens,
        "time_cap": args.time_cap,
        "n_ctx": args.n_ctx,
        "threads": args.threads,
        "model": args.model,
        "engines": list(engines),
    }
    done: dict[tuple[str, str], dict[str, Any]] = {}
    starts: Counter[tuple[str, str]] = Counter()
    first_started = started
    if args.fresh:
        checkpoint.unlink(missing_ok=True)
    if checkpoint.exists():
        lines = [json.loads(x) for x in checkpoint.read_text().splitlines() if x.strip()]
        if lines and lines[0].get("params") == params:
            first_started = lines[0]["started"]
            for line in lines[1:]:
                key = (line["file"], line["engine"])
                if line["kind"] == "start":
                    starts[key] += 1
                else:
                    done[key] = line
                    starts[key] = 0
        else:
            lines = []
        if not lines:
            checkpoint.unlink()
    if not checkpoint.exists():
        checkpoint.write_text(json.dumps({"params": params, "started": started}) + "\n")
    retried = 0
    if args.retry_time_capped:
        for key in [k for k, r in done.items() if r["finish"] == "time_cap"]:
            del done[key]
            retried += 1
    # An attempt that started but never finished is retried once (the run may have been
    # interrupted); one that started twice without finishing killed the process both times.
    for key in [k for k, times in starts.items() if times >= 2 and k not in done]:
        done[key] = {
            "kind": "result",
            "file": key[0],
            "engine": key[1],
            "compiled": None,
            "valid": False,
            "finish": "crashed",
            "tokens": 0,
            "seconds": None,
            "error": "the process died twice during this attempt (resumed from the checkpoint)",
        }
        _append(checkpoint, done[key])

    from tether.providers.gguf_file import bundled_model_file, verify
    from tether.providers.llamacpp import _token_text
    from tether.providers.prompt_format import ChatTemplateFormat

    bundled = bundled_model_file(args.model, Path.home() / ".cache" / "tether")
    if bundled is None:
        raise SystemExit(f"--model: no bundled model called {args.model!r}")
    model_path = verify(bundled, model=args.model)
    llm = bench.load_llama(model_path, n_ctx=args.n_ctx, threads=args.threads)
    chat_template = llm.metadata.get("tokenizer.chat_template")
    chat = (
        ChatTemplateFormat(
            chat_template,
            eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()),
        )
        if chat_template
        else None
    )

    def framed(instruction: str) -> bytes:
        if chat is None:
            return instruction.encode("utf-8")
        return chat.render([Message("user", instruction)]).text.encode("utf-8")

    tokenizer = bench.llg_tokenizer(llm)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    budget = args.n_ctx - args.max_tokens - 8

    def prompt_for(schema: Any) -> tuple[list[int], bool, int]:
        text = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
        tokens = llm.tokenize(framed(INSTRUCTION.format(schema=text)), special=True)
        if len(tokens) <= budget:
            return tokens, False, len(text)
        low, high = 0, len(text)  # longest prefix of the schema text that fits
        while low < high:
            mid = (low + high + 1) // 2
            cut = INSTRUCTION.format(schema=text[:mid] + " …(truncated)")
            if len(llm.tokenize(framed(cut), special=True)) <= budget:
                low = mid
            else:
                high = mid - 1
        cut = INSTRUCTION.format(schema=text[:low] + " …(truncated)")
        return llm.tokenize(framed(cut), special=True), True, low

    def generate(tokens: list[int], **kwargs: Any) -> dict[str, Any]:
        # The cap counts generation only: it starts at the first sampled token, after prompt
        # processing (which only the first engine on a schema pays; the order alternates).
        state: dict[str, Any] = {"deadline": None, "hit": False}

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            now = perf_counter()
            if state["deadline"] is None:
                state["deadline"] = now + args.time_cap
            elif now > state["deadline"]:
                state["hit"] = True
            return bool(state["hit"])

        start = perf_counter()
        out = llm.create_completion(
            tokens,
            max_tokens=args.max_tokens,
            temperature=0.0,
            stop=[],
            stopping_criteria=llama_cpp.StoppingCriteriaList([past_deadline]),
            **kwargs,
        )
        seconds = perf_counter() - start
        choice = out["choices"][0]
        finish = "time_cap" if state["hit"] else choice["finish_reason"]
        return {
            "text": choice["text"],
            "tokens": out["usage"]["completion_tokens"],
            "seconds": seconds,
            "finish": finish,
        }

    def run_tether(schema: Any, tokens: list[int]) -> dict[str, Any]:
        t0 = perf_counter()
        try:
            contract = Contract.from_schema(schema)
            enforced, _ = contract.enforcement_schema()
            grammar = compile_json_schema(enforced)
        except Exception as exc:
            return {"compiled": False, "valid": False, "error": _short(exc), "finish": "compile"}
        compile_s = perf_counter() - t0
        constraint = GrammarConstraint(tokenizer, grammar)
        gen = generate(tokens, logits_processor=llama_cpp.LogitsProcessorList([constraint]))
        check, _ = contract.check(gen["text"])
        return {
            "compiled": True,
            "compile_s": compile_s,
            **gen,
            "valid": check.ok and gen["finish"] == "stop",
            "grammar_error": constraint.error,
            "errors": list(check.errors[:3]),
        }

    def run_llamacpp(schema: Any, tokens: list[int]) -> dict[str, Any]:
        t0 = perf_counter()
        try:
            grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            sampler = llama_cpp.llama_sampler_init_grammar(
                vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
            )
            if not sampler:
                raise ValueError("llama.cpp could not parse the generated GBNF grammar")
            llama_cpp.llama_sampler_free(sampler)
        except Exception as exc:
            return {"compiled": False, "valid": False, "error": _short(exc), "finish": "compile"}
        compile_s = perf_counter() - t0
        gen = generate(tokens, grammar=grammar)
        try:
            checker: Any = SchemaValidator(schema)
            used = "tether SchemaValidator"
        except Exception:
            checker, used = build_jsonschema(schema), "jsonschema"
        try:
            value = json.loads(gen["text"])
            valid, errors = bool(checker.is_valid(value)), []
        except Exception as exc:
            valid, errors = False, [_short(exc)]
        if valid:
            pass
        elif used.startswith("tether") and not errors:
            errors = list(checker.errors(value)[:3])
        return {
            "compiled": True,
            "compile_s": compile_s,
            "grammar_chars": len(grammar._grammar),
            **gen,
            "valid": valid and gen["finish"] == "stop",
            "validated_with": used,
            "errors": errors,
        }

    runners = {"tether": run_tether, "llamacpp_grammar": run_llamacpp}
    wall_start = perf_counter()
    with bench.progress() as bar:
        task = bar.add_task("coverage", total=len(chosen) * len(engines), status="")
        bar.update(task, advance=sum(1 for k in done if k[1] in engines))
        for k, file in enumerate(chosen):
            if all((file.name, e) in done for e in engines):
                continue
            doc = json.loads(file.read_text(encoding="utf-8"))
            schema = doc["schema"]
            tokens, truncated, schema_chars = prompt_for(schema)
            order = engines if k % 2 == 0 else engines[::-1]
            for position, engine in enumerate(order):
                key = (file.name, engine)
                if key in done:
                    continue
                _append(checkpoint, {"kind": "start", "file": file.name, "engine": engine})
                try:
                    result = runners[engine](schema, tokens)
                except Exception as exc:  # anything unexpected is that engine's miss
                    result = {"compiled": None, "valid": False, "error": _short(exc),
                              "finish": "error"}  # fmt: skip
                text = result.pop("text", None)
                record = {
                    "kind": "result",
                    "file": file.name,
                    "engine": engine,
                    "index": k,
                    "position_in_order": position,
                    "prompt_tokens": len(tokens),
                    "schema_truncated": truncated,
                    "schema_chars_in_prompt": schema_chars,
                    "tokens": result.pop("tokens", 0),
                    "seconds": result.pop("seconds", None),
                    **result,
                    "text": text[:300] if isinstance(text, str) else None,
                }
                done[key] = record
                _append(checkpoint, record)
                tally = {
                    e: sum(1 for (f, x), r in done.items() if x == e and r["valid"])
                    for e in engines
                }
                bar.update(task, advance=1, status=" / ".join(f"{e} {n}" for e, n in tally.items()))
    llm.close()
    payload = report(
        args,
        [f.name for f in chosen],
        done,
        started=first_started,
        machine=machine,
        model_file=model_path.name,
        engines=engines,
        this_run_s=perf_counter() - wall_start,
        retried=retried,
    )
    checkpoint.unlink(missing_ok=True)
    return payload


def resummarize(args: Any) -> dict[str, Any]:
    old = json.loads(args.from_results.read_text(encoding="utf-8"))
    keys = ("count", "max_tokens", "time_cap", "n_ctx", "threads", "model")
    old["parameters"].setdefault("model", "gemma-3-270m")  # runs before --model used Gemma
    mismatched = [k for k in keys if old["parameters"].get(k) != getattr(args, k)]
    engines = tuple(e for e in ENGINES if e in old["engines"])
    if mismatched:
        raise SystemExit(f"--from-results: parameters differ from that run: {mismatched}")
    done = {
        (row["file"], engine): {"file": row["file"], "engine": engine, **row[engine]}
        for row in old["per_schema"]
        for engine in engines
    }
    machine = old["machine"]
    # load_average_at_end is rewritten on output; keep the measured run's own value apart
    machine.setdefault("load_average_at_end_of_run", machine.pop("load_average_at_end", None))
    return report(
        args,
        [row["file"] for row in old["per_schema"]],
        done,
        started=old["date_utc"],
        machine=machine,
        model_file=old["parameters"]["model_file"],
        this_run_s=old["this_run_seconds"],
        engines=engines,
        resummarized=True,
    )


def report(
    args: Any,
    names: list[str],
    done: dict[tuple[str, str], dict[str, Any]],
    *,
    started: str,
    machine: dict[str, Any],
    model_file: str,
    this_run_s: float,
    engines: tuple[str, ...] = ENGINES,
    retried: int = 0,
    resummarized: bool = False,
) -> dict[str, Any]:
    per_engine: dict[str, dict[str, Any]] = {}
    for engine in engines:
        rows = [done[(n, engine)] for n in names]
        generated = [r for r in rows if r.get("seconds")]
        toks = sum(r["tokens"] for r in generated)
        secs = sum(r["seconds"] for r in generated)
        per_engine[engine] = {
            "share_valid": sum(r["valid"] for r in rows) / len(rows),
            "valid": sum(r["valid"] for r in rows),
            "compiled": sum(bool(r["compiled"]) for r in rows),
            "compile_failures": sum(r["compiled"] is False for r in rows),
            "finish": dict(Counter(r["finish"] for r in rows)),
            "tokens_per_s_incl_prompt": toks / secs if secs else None,
            "seconds_total": secs,
            "seconds_per_attempt": bench.summary([r["seconds"] for r in generated]),
            "tokens_per_attempt": bench.summary([r["tokens"] for r in generated]),
            "capped_with_runaway_number": sum(
                r["finish"] in ("length", "time_cap") and bool(RUNAWAY.search(r.get("text") or ""))
                for r in rows
            ),
            "by_source": {
                src: {
                    "schemas": sum(1 for r in rows if source_of(r["file"]) == src),
                    "valid": sum(r["valid"] for r in rows if source_of(r["file"]) == src),
                }
                for src in sorted({source_of(n) for n in names})
            },
        }
    peer = "llamacpp_grammar" in engines

    def valid(name: str, engine: str) -> bool:
        return bool(done[(name, engine)]["valid"]) if (name, engine) in done else False

    both = sum(valid(n, "tether") and valid(n, "llamacpp_grammar") for n in names)
    only_t = sum(valid(n, "tether") and not valid(n, "llamacpp_grammar") for n in names)
    only_l = sum(valid(n, "llamacpp_grammar") and not valid(n, "tether") for n in names)
    share_t = per_engine["tether"]["share_valid"]
    share_l = per_engine["llamacpp_grammar"]["share_valid"] if peer else None
    model_name = MODEL_NAMES.get(args.model, args.model)

    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": (
            f"share of maskbench schemas for which the local model ({model_name}) yields a "
            "schema-valid instance in one attempt: tether's engine (llguidance GrammarConstraint) "
            "vs llama.cpp's own grammar (LlamaGrammar.from_json_schema)"
        ),
        "headline": "tether's share of schemas with a valid instance",
        "value": share_t,
        "target": share_l if share_l is not None else ALONE_TARGET,
        "target_rule": ">= llama.cpp grammar's share"
        if share_l is not None
        else f">= {ALONE_TARGET:.0%} (llama.cpp's grammar not run)",
        "meets_target": share_t >= (share_l if share_l is not None else ALONE_TARGET),
        "date_utc": started,
        "machine": machine,
        "versions": bench.versions("tether", "llama_cpp_python", "llguidance", "jsonschema_rs"),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "temperature": 0.0,
            "model_file": model_file,
            "selection": "sorted maskbench file names, index i*N//count for i < count",
            "instruction": INSTRUCTION,
        },
        "method": {
            "tether": (
                "Contract.from_schema (SchemaValidator compiles) -> enforcement_schema() -> "
                "compile_json_schema (llguidance) -> create_completion(logits_processor="
                "[GrammarConstraint]) -> contract.check(text)"
            ),
            "llamacpp_grammar": (
                "LlamaGrammar.from_json_schema(json.dumps(schema)); parsed once with "
                "llama_sampler_init_grammar (NULL = compile failure) -> create_completion("
                "grammar=...) -> original schema checked with SchemaValidator (jsonschema when "
                "SchemaValidator cannot compile it)"
            ),
            "miss": (
                "not compiled, invalid output, finish at max_tokens or at the per-attempt time "
                "cap, or a crash; one attempt, no repairs"
            ),
            "prompt": (
                "the instruction with the compact schema JSON; schema text cut (marked "
                "'…(truncated)') so prompt + max_tokens fit n_ctx"
            ),
            "order": "engines alternate first/second per schema; the second reuses the KV cache",
            "caps": (
                f"max_tokens {args.max_tokens} (lowered from the ~300 first planned) and a "
                f"{args.time_cap:.0f} s cap on generation time per attempt (from the first "
                "sampled token; prompt processing not counted) keep the whole run under ~45 "
                "minutes on this shared 2-core machine; a capped attempt is a miss, and the "
                "finish reasons per engine show how many were capped (the slower llama.cpp "
                "grammar is the one the time cap can bind)"
            ),
        },
        "schemas": len(names),
        "schemas_truncated": sum(done[(n, "tether")].get("schema_truncated", False) for n in names),
        "both_valid": both,
        "only_tether_valid": only_t,
        "only_llamacpp_valid": only_l,
        "engines": per_engine,
        "this_run_seconds": this_run_s,
        "time_capped_attempts_retried": retried,
        "per_schema": [{"file": n, **{e: _slim(done[(n, e)]) for e in engines}} for n in names],
    }
    if resummarized:
        payload["resummarized_utc"] = bench.utc_now()
        payload["resummarized_note"] = (
            "summary recomputed with --from-results from the per-schema records of the run "
            "dated date_utc; nothing was measured again"
        )
    rows = [
        (
            e,
            f"{per_engine[e]['valid']}/{len(names)}",
            f"{per_engine[e]['share_valid']:.1%}",
            per_engine[e]["compiled"],
            ", ".join(f"{k} {v}" for k, v in sorted(per_engine[e]["finish"].items())),
            bench.fmt(per_engine[e]["seconds_per_attempt"]["median"], 2),
            bench.fmt(per_engine[e]["tokens_per_s_incl_prompt"], 1),
        )
        for e in engines
    ]
    notes = [
        f"both valid {both}, only tether {only_t}, only llama.cpp grammar {only_l}.",
        "attempts cut off (max_tokens/time cap) while writing a number that never ends "
        "(30+ digits): "
        + ", ".join(f"{e} {per_engine[e]['capped_with_runaway_number']}" for e in engines)
        + ".",
        f"one attempt per engine, max_tokens {args.max_tokens}, time cap "
        f"{args.time_cap:.0f} s per attempt, n_ctx {args.n_ctx}, temperature 0.",
        "by source (tether / llama.cpp valid of schemas): "
        + "; ".join(
            f"{src} {v['valid']}/"
            f"{per_engine['llamacpp_grammar']['by_source'][src]['valid'] if peer else '-'}"
            f" of {v['schemas']}"
            for src, v in per_engine["tether"]["by_source"].items()
        ),
    ]
    if retried:
        notes.append(
            f"{retried} attempts cut by the time cap while other work loaded the machine were "
            "run again (--retry-time-capped)."
        )
    if not peer:
        notes[0] = "llama.cpp's grammar was not run (--engines): no side-by-side figures."
    bench.write_results(
        NAME,
        args.out,
        payload,
        title=f"Structured-output coverage on maskbench schemas ({model_name})",
        header=(
            "engine",
            "valid",
            "share",
            "compiled",
            "finish reasons",
            "s / attempt (median)",
            "tokens/s (incl. prompt)",
        ),
        rows=rows,
        notes=notes,
    )
    versus = f" vs llama.cpp grammar {share_l:.1%}" if share_l is not None else ""
    bench.console.print(f"valid share: tether {share_t:.1%}{versus}")
    return payload


def _append(path: Path, record: dict[str, Any]) -> None:
    import os

    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(bench.rounded(record), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in {"kind", "file", "engine"}}


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    main()
