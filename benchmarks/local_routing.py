"""Cheap/premium routing between the two local models on the customer-feedback prompt.

Method. A seeded sample of N Yelp reviews (sentiment/yelp_labelled.tsv under --data; 1 =
positive) is split in two disjoint halves by the same shuffle.

1. Training half: prompts/feedback-sentiment/1.1.0.yaml runs on `local-small` (cheap: Gemma 3
   270M, few-shot) and on `local` (premium: Qwen2.5-Coder-0.5B-Instruct) for each review. A
   review is passed when the output's sentiment equals the label. These outcomes train the
   learned router (tether.routing.learned.train_router, MiniLM, its default options: threshold
   keeping 95% of premium quality on held-out folds), keyed by the text the route stage reads
   (RouteInput.text of the rendered prompt). They are also written to
   results/local_routing_outcomes.jsonl, the `tether route train --data` format. If no router
   can be trained (the cheap model passes or fails every row), the best single `min_chars`
   rules policy on the training half is used instead; `router.kind` in the JSON says which.
2. Test half: each review runs three ways, one after the other: all-cheap (model="local-small"),
   all-premium (model="local"), routed (model="router:feedback", the router of
   examples/customer_feedback/tether.toml pointed at the file just trained) through the whole
   pipeline (the route stage embeds the request and picks the model).

Per arm: accuracy (a neutral answer or an error is wrong), schema-valid share (a Result came
back and its raw text validates with jsonschema against the prompt's output schema,
independently of tether), share of premium calls (the model that answered, fallbacks
included), cost per 1,000 requests (Result.cost_usd, failed attempts included, at the catalog's
notional local prices), latency (Result.latency_s). The oracle line (premium exactly where the
cheap model fails and premium passes) is computed from the two single-model arms: an upper
bound for any router. Each model loads before the first timed call.

    python benchmarks/local_routing.py [--sample 200] [--data ../shared/data]

Writes results/local_routing.json (`value`: routed accuracy), local_routing.md, local_routing.png
and local_routing_outcomes.jsonl.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench
from tether import Client, ContractViolation, Settings
from tether.cache.embedders.registry import create_embedder
from tether.errors import ConfigError, TetherError
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.loader import load_spec
from tether.routing.base import RouteInput
from tether.routing.config import RouterSettings, RuleSettings, RulesRouterSettings
from tether.routing.learned.dataset import Outcome, Outcomes, check_outcomes
from tether.routing.learned.train import TrainOptions, train_router
from tether.settings import LOCAL_MODEL_NAME, LOCAL_SMALL_MODEL_NAME

NAME = "local_routing"
PROMPT = bench.REPO_ROOT / "prompts" / "feedback-sentiment" / "1.1.0.yaml"
EXAMPLE_CONFIG = bench.EXAMPLE_DIR / "tether.toml"
ROUTER = "feedback"
CHEAP, PREMIUM = LOCAL_SMALL_MODEL_NAME, LOCAL_MODEL_NAME
ARMS = {"all-cheap": CHEAP, "all-premium": PREMIUM, "routed": f"router:{ROUTER}"}
LABELS = {1: "positive", 0: "negative"}


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--sample", type=int, default=200, help="reviews: half train, half test")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the sample and split")
    return parser.parse_args(argv)


def classify(
    client: Client, compiled: CompiledPrompt, checker: Any, text: str, label: int, model: str
) -> dict[str, Any]:
    """One review on one model (or router): what came back, what it cost, who answered."""
    item: dict[str, Any] = {"label": label}
    try:
        result = client.run_compiled(compiled, {"comment": text}, model=model)
    except ContractViolation as violation:
        attempts = violation.attempts
        item.update(predicted="error", error=violation.message[:300], schema_valid=False,
                    answered_by=attempts[-1].model, cost_usd=sum(a.cost_usd for a in attempts),
                    latency_s=sum(a.latency_s for a in attempts))  # fmt: skip
    except TetherError as exc:
        item.update(predicted="error", error=exc.message[:300], schema_valid=False,
                    answered_by=None, cost_usd=0.0, latency_s=None)  # fmt: skip
    else:
        item.update(
            predicted=result.output.get("sentiment"),
            schema_valid=_raw_valid(checker, result.raw),
            answered_by=result.attempts[-1].model,  # configured name; result.model is upstream
            cost_usd=result.cost_usd,
            latency_s=result.latency_s,
            repairs=result.repairs,
        )
    item["correct"] = item["predicted"] == LABELS[label]
    return item


def _raw_valid(checker: Any, raw: str) -> bool:
    try:
        return bool(checker.is_valid(json.loads(raw)))
    except ValueError:
        return False


def route_text(compiled: CompiledPrompt, review: str) -> str:
    return RouteInput(messages=tuple(compiled.render({"comment": review}))).text


def best_length_rule(outcomes: Outcomes) -> tuple[RouterSettings, dict[str, Any]]:
    """The `min_chars` rule (premium for longer requests) with the best training accuracy."""
    lengths = sorted({len(t) for t in outcomes.texts})
    best: tuple[float, float, int] = (-1.0, 0.0, lengths[-1] + 1)
    for cut in [*lengths, lengths[-1] + 1]:
        premium = [len(t) >= cut for t in outcomes.texts]
        right = [p if up else c for up, c, p in zip(premium, outcomes.cheap, outcomes.premium,
                                                      strict=True)]  # fmt: skip
        score = (statistics.fmean(right), -statistics.fmean(premium), cut)
        best = max(best, score)
    accuracy, share, cut = best
    rule = RuleSettings(name="long requests", min_chars=cut, model=PREMIUM)
    config = RulesRouterSettings(policy="rules", rules=[rule], default=CHEAP, fallbacks=[PREMIUM])
    return config, {"min_chars": cut, "train_accuracy": accuracy, "train_premium_share": -share}


def train(outcomes: Outcomes, folder: Path, seed: int) -> tuple[RouterSettings, dict[str, Any]]:
    """The example's learned router, trained on `outcomes`; a length rule if it cannot be."""
    example = Settings.load(EXAMPLE_CONFIG, environ={}).routers[ROUTER]
    try:
        check_outcomes(outcomes, "training half")
    except ConfigError as exc:
        config, facts = best_length_rule(outcomes)
        return config, {"kind": "rules (min_chars)", "why": exc.message, **facts}
    router = train_router(outcomes, create_embedder("minilm"), TrainOptions(seed=seed))
    path = folder / "feedback.npz"
    router.save(path)
    facts = {"kind": "learned", "k": router.k, "blend": router.blend,
             "threshold": router.threshold, **router.info}  # fmt: skip
    return example.model_copy(update={"path": path}), facts


def arm_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(items)
    latencies = [i["latency_s"] for i in items if i["latency_s"] is not None]
    return {
        "requests": n,
        "accuracy": sum(i["correct"] for i in items) / n,
        "schema_valid_share": sum(i["schema_valid"] for i in items) / n,
        "premium_share": sum(i["answered_by"] == PREMIUM for i in items) / n,
        "errors": sum(i["predicted"] == "error" for i in items),
        "cost_per_1000_usd": 1000 * statistics.fmean(i["cost_usd"] for i in items),
        "latency_s": bench.summary(latencies),
    }


def oracle(cheap: list[dict[str, Any]], premium: list[dict[str, Any]]) -> dict[str, Any]:
    """Premium exactly where it is right and the cheap model is not."""
    up = [not c["correct"] and p["correct"] for c, p in zip(cheap, premium, strict=True)]
    chosen = [p if u else c for u, c, p in zip(up, cheap, premium, strict=True)]
    return {
        "accuracy": sum(i["correct"] for i in chosen) / len(chosen),
        "premium_share": sum(up) / len(up),
        "cost_per_1000_usd": 1000 * statistics.fmean(i["cost_usd"] for i in chosen),
    }


def disagreements(results: dict[str, list[dict[str, Any]]]) -> int:
    """Routed answers that differ from the direct call of the model that gave them: the same
    model on the same prompt (temperature 0) answering differently is run-to-run noise."""
    direct = {CHEAP: results["all-cheap"], PREMIUM: results["all-premium"]}
    return sum(
        r["predicted"] != direct[r["answered_by"]][n]["predicted"]
        for n, r in enumerate(results["routed"])
        if r["answered_by"] in direct
    )


def plot(arms: dict[str, dict[str, Any]], best: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=100)
    axes = figure.subplots()
    for name, arm in [*arms.items(), ("oracle", best)]:
        hollow = name == "oracle"
        axes.scatter(arm["cost_per_1000_usd"], arm["accuracy"], s=70, zorder=3,
                     facecolors="none" if hollow else None, edgecolors="#333")  # fmt: skip
        axes.annotate(f"{name} ({arm['premium_share']:.0%} premium)",
                      (arm["cost_per_1000_usd"], arm["accuracy"]),
                      textcoords="offset points", xytext=(6, -12))  # fmt: skip
    axes.set_xlabel("cost per 1,000 requests (USD, notional local prices)")
    axes.set_ylabel("accuracy on the test half")
    axes.set_title("feedback-sentiment: local-small / local / routed")
    axes.margins(x=0.3, y=0.2)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import jsonschema

    started = bench.utc_now()
    t_start = perf_counter()
    reviews = bench.load_yelp(args.data)
    size = min(args.sample, len(reviews))
    picked = random.Random(args.seed).sample(range(len(reviews)), size)
    train_rows, test_rows = picked[: size // 2], picked[size // 2 :]
    compiled = load_spec(PROMPT).compiled
    output = compiled.spec.output
    if output is None or output.schema_ is None:
        raise SystemExit(f"{PROMPT}: the benchmark needs an output schema")
    checker = jsonschema.Draft202012Validator(output.schema_)
    work = Path(tempfile.mkdtemp(prefix="tether-local-routing-"))
    base = Settings.load(EXAMPLE_CONFIG, environ={}).model_copy(update={"data_dir": work})

    rows: list[Outcome] = []
    with Client(base.model_copy(update={"routers": {}})) as client, bench.progress() as bar:
        for model in (CHEAP, PREMIUM):
            client.provider(model).count_tokens("warm up")  # load the weights untimed
        task = bar.add_task("training half", total=len(train_rows), status="")
        for index in train_rows:
            text, label = reviews[index]
            low, high = (classify(client, compiled, checker, text, label, m)["correct"]
                         for m in (CHEAP, PREMIUM))  # fmt: skip
            rows.append(Outcome(route_text(compiled, text), low, high))
            bar.update(task, advance=1)
    outcomes = Outcomes(tuple(rows))
    outcomes_path = args.out / f"{NAME}_outcomes.jsonl"
    outcomes_path.parent.mkdir(parents=True, exist_ok=True)
    outcomes_path.write_text("".join(
        json.dumps({"text": r.text, "cheap_correct": r.cheap_correct,
                    "premium_correct": r.premium_correct}) + "\n" for r in rows))  # fmt: skip
    t_train = perf_counter()
    router_config, router_facts = train(outcomes, work, args.seed)
    train_s = perf_counter() - t_train

    results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    settings = base.model_copy(update={"routers": {ROUTER: router_config}})
    with Client(settings) as client, bench.progress() as bar:
        for model in (CHEAP, PREMIUM):
            client.provider(model).count_tokens("warm up")
        task = bar.add_task("test half", total=len(test_rows), status="")
        for n, index in enumerate(test_rows, 1):
            text, label = reviews[index]
            for arm, model in ARMS.items():
                item = classify(client, compiled, checker, text, label, model)
                results[arm].append({"index": index, **item})
            routed = results["routed"]
            bar.update(task, advance=1, status=f"routed accuracy "
                       f"{sum(i['correct'] for i in routed) / n:.3f}")  # fmt: skip

    arms = {arm: arm_summary(items) for arm, items in results.items()}
    best = oracle(results["all-cheap"], results["all-premium"])
    best_single = max(arms["all-cheap"]["accuracy"], arms["all-premium"]["accuracy"])
    routed_arm = arms["routed"]
    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": "feedback-sentiment 1.1.0 on local-small, on local, and routed between them",
        "headline": "routed accuracy",
        "value": routed_arm["accuracy"],
        "target": best_single - 0.01,
        "target_rule": ">= the better single model's accuracy minus 1 point",
        "meets_target": routed_arm["accuracy"] >= best_single - 0.01,
        "date_utc": started,
        "machine": bench.machine(),
        "versions": bench.versions("tether", "llama_cpp_python", "llguidance", "onnxruntime"),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "prompt": str(PROMPT.relative_to(bench.REPO_ROOT)),
            "cheap": CHEAP,
            "premium": PREMIUM,
            "train_reviews": len(train_rows),
            "test_reviews": len(test_rows),
            "split": "random.Random(seed).sample(range(reviews), sample): first half trains",
        },
        "router": router_facts,
        "training_outcomes": {
            "cheap_accuracy": statistics.fmean(outcomes.cheap),
            "premium_accuracy": statistics.fmean(outcomes.premium),
            "file": str(outcomes_path),
        },
        "router_train_s": train_s,
        "arms": arms,
        "oracle": best,
        "routed_vs_direct_disagreements": disagreements(results),
        "total_wall_s": perf_counter() - t_start,
        "items": results,
    }
    table: list[tuple[str, ...]] = [
        (name, f"{a['accuracy']:.3f}", f"{a['schema_valid_share']:.1%}",
         f"{a['premium_share']:.1%}", f"${a['cost_per_1000_usd']:.5f}",
         bench.fmt(a["latency_s"]["median"]))
        for name, a in arms.items()
    ]  # fmt: skip
    share, cost = f"{best['premium_share']:.1%}", f"${best['cost_per_1000_usd']:.5f}"
    table.append(("oracle (upper bound)", f"{best['accuracy']:.3f}", "", share, cost, ""))
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="Local cheap/premium routing on the customer-feedback prompt (Yelp reviews)",
        header=("arm", "accuracy", "schema-valid", "premium calls", "$ / 1,000", "p50 latency (s)"),
        rows=table,
        notes=[
            f"{len(train_rows)} training and {len(test_rows)} test reviews (disjoint), seed "
            f"{args.seed}; router: {router_facts['kind']}.",
            "Costs are notional (electricity for CPU time, src/tether/costs/prices.toml).",
            f"{payload['routed_vs_direct_disagreements']} routed answers differ from the direct "
            "call of the same model (temperature 0): run-to-run noise of llama.cpp.",
            f"Whole run {payload['total_wall_s']:.0f} s on a shared 2-core machine.",
        ],
    )
    plot(arms, best, args.out / f"{NAME}.png")
    for arm, a in arms.items():
        bench.console.print(
            f"{arm}: accuracy {a['accuracy']:.3f}, premium calls {a['premium_share']:.0%}, "
            f"${a['cost_per_1000_usd']:.5f} per 1,000"
        )
    return payload


if __name__ == "__main__":
    main()
