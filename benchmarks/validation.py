"""Validation speed and conformance: tether's SchemaValidator (jsonschema-rs) vs jsonschema.

Every maskbench schema (schemas/maskbench/*.json under --data) is compiled by both sides:
tether's `SchemaValidator(schema)` (meta-schema check, formats validated, remote $refs refused)
and `jsonschema.validators.validator_for(schema)` (`check_schema`, then the validator built once
with the class's FORMAT_CHECKER and a registry that refuses remote $refs). A schema that either
side cannot compile, or that raises while evaluating one of its instances, is counted and left
out of the timing.

Timing: for each schema, each side's `is_valid` runs over the schema's instances `--repeat`
times in one timed block (perf_counter_ns); the two sides alternate which goes first from schema
to schema and round to round. Per schema the fastest of `--rounds` blocks is kept (the machine is
shared; bursts of load otherwise dominate); the mean over rounds is reported as well.
Per-instance time = summed block time / (repeat x instances).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from time import perf_counter_ns
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "validation"
TARGET_SPEEDUP = 20.0


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--repeat", type=int, default=10, help="passes per timed block")
    parser.add_argument("--rounds", type=int, default=5, help="timed blocks per schema and side")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (0 = all)")
    return parser.parse_args(argv)


def _refuse(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


def build_jsonschema(schema: Any) -> Any:
    import jsonschema
    from referencing import Registry

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(
        schema,
        format_checker=cls.FORMAT_CHECKER,
        registry=Registry(retrieve=_refuse),  # type: ignore[call-arg]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import jsonschema

    from tether.contracts.validator import SchemaValidator

    started = bench.utc_now()
    machine = bench.machine()
    folder = bench.check_data(args.data, "schemas", "maskbench")
    files = sorted(folder.glob("*.json"))
    if args.limit:
        files = files[: args.limit]

    sides = ("tether", "jsonschema")
    compile_fail: dict[str, list[dict[str, str]]] = {s: [] for s in sides}
    eval_fail: dict[str, list[dict[str, str]]] = {s: [] for s in sides}
    verdicts: dict[str, dict[str, list[bool]]] = {s: {} for s in sides}
    validators: dict[str, dict[str, Any]] = {s: {} for s in sides}
    instances: dict[str, list[Any]] = {}
    labels: dict[str, list[bool]] = {}

    with bench.progress() as bar:
        task = bar.add_task("compile + verdicts", total=len(files), status="")
        for file in files:
            doc = json.loads(file.read_text(encoding="utf-8"))
            schema = doc["schema"]
            tests = doc.get("tests", [])
            instances[file.name] = [t["data"] for t in tests]
            labels[file.name] = [bool(t["valid"]) for t in tests]
            builders = {
                "tether": lambda s=schema: SchemaValidator(s),
                "jsonschema": lambda s=schema: build_jsonschema(s),
            }
            for side in sides:
                try:
                    v = builders[side]()
                except Exception as exc:
                    compile_fail[side].append({"file": file.name, "error": _short(exc)})
                    continue
                try:
                    verdicts[side][file.name] = [bool(v.is_valid(i)) for i in instances[file.name]]
                except Exception as exc:
                    eval_fail[side].append({"file": file.name, "error": _short(exc)})
                    continue
                validators[side][file.name] = v
            bar.update(task, advance=1, status=file.name[:40])

        usable = {s: set(validators[s]) for s in sides}
        common = sorted(usable["tether"] & usable["jsonschema"])
        timed = [name for name in common if instances[name]]
        best: dict[str, dict[str, int]] = {s: {} for s in sides}
        total_ns: dict[str, dict[str, int]] = {s: {} for s in sides}
        task = bar.add_task("timing", total=args.rounds * len(timed), status="")
        for rnd in range(args.rounds):
            for k, name in enumerate(timed):
                order = sides if (k + rnd) % 2 == 0 else sides[::-1]
                data = instances[name]
                for side in order:
                    check = validators[side][name].is_valid
                    t0 = perf_counter_ns()
                    for _ in range(args.repeat):
                        for value in data:
                            check(value)
                    elapsed = perf_counter_ns() - t0
                    best[side][name] = min(best[side].get(name, elapsed), elapsed)
                    total_ns[side][name] = total_ns[side].get(name, 0) + elapsed
                bar.update(task, advance=1, status=f"round {rnd + 1}")

    n_instances = sum(len(instances[n]) for n in timed)
    per_instance_us = {s: sum(best[s].values()) / 1000 / (args.repeat * n_instances) for s in sides}
    mean_per_instance_us = {
        s: sum(total_ns[s].values()) / 1000 / (args.rounds * args.repeat * n_instances)
        for s in sides
    }
    speedup = per_instance_us["jsonschema"] / per_instance_us["tether"]
    per_schema_ratio = [best["jsonschema"][n] / best["tether"][n] for n in timed]

    def agreement(side: str, names: list[str]) -> dict[str, Any]:
        agree = total = 0
        for n in names:
            for got, label in zip(verdicts[side][n], labels[n], strict=True):
                total += 1
                agree += got == label
        return {"instances": total, "agreeing": agree, "rate": agree / total if total else None}

    tether_disagreements = [
        {"file": n, "test": i, "label": label, "tether": got}
        for n in sorted(usable["tether"])
        for i, (got, label) in enumerate(zip(verdicts["tether"][n], labels[n], strict=True))
        if got != label
    ]
    jsonschema_disagreements = [
        {"file": n, "test": i, "label": label, "jsonschema": got}
        for n in sorted(usable["jsonschema"])
        for i, (got, label) in enumerate(zip(verdicts["jsonschema"][n], labels[n], strict=True))
        if got != label
    ]
    agreements = {
        s: {
            "own_compiled_schemas": agreement(s, sorted(usable[s])),
            "schemas_both_compile": agreement(s, common),
        }
        for s in sides
    }

    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": (
            "time per instance of tether.contracts.validator.SchemaValidator(schema).is_valid "
            "vs jsonschema.validators.validator_for(schema)(schema).is_valid, plus agreement "
            "with maskbench's valid/invalid labels"
        ),
        "headline": "jsonschema time / tether time per instance",
        "value": speedup,
        "target": TARGET_SPEEDUP,
        "target_rule": ">= 20",
        "meets_target": speedup >= TARGET_SPEEDUP,
        "date_utc": started,
        "machine": machine,
        "versions": bench.versions(
            "tether", "jsonschema", "jsonschema_rs", "referencing", "jsonschema-specifications"
        ),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "method": {
            "timing": (
                "per schema and side one perf_counter_ns block of `repeat` passes over the "
                "schema's instances (Python loop overhead included on both sides); sides "
                "alternate first/second per schema and round; the fastest of `rounds` blocks per "
                "schema is kept; per-instance time = summed blocks / (repeat x instances)"
            ),
            "tether": (
                "SchemaValidator(schema): jsonschema_rs.meta.validate, then "
                "jsonschema_rs.validator_for(validate_formats=True, remote $refs refused)"
            ),
            "jsonschema": (
                "cls = validator_for(schema) (draft from $schema, 2020-12 when absent); "
                "cls.check_schema(schema); cls(schema, format_checker=cls.FORMAT_CHECKER, "
                "registry refusing remote retrieval)"
            ),
            "formats": (
                "jsonschema checks only the formats whose optional libraries are installed: "
                f"{sorted(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)}; "
                "jsonschema-rs checks every format it knows (date-time, uri, hostname, ...). "
                "jsonschema thus does less work per instance; its timing is, if anything, "
                "flattered"
            ),
            "excluded": (
                "schemas that either side cannot compile or that raise during is_valid are left "
                "out of the timing; schemas without instances add nothing to it"
            ),
        },
        "files": len(files),
        "instances_total": sum(len(v) for v in instances.values()),
        "compile_failures": {s: len(compile_fail[s]) for s in sides},
        "evaluation_failures": {s: len(eval_fail[s]) for s in sides},
        "schemas_both_usable": len(common),
        "schemas_timed": len(timed),
        "instances_timed": n_instances,
        "per_instance_us": per_instance_us,
        "per_instance_us_mean_over_rounds": mean_per_instance_us,
        "speedup_mean_over_rounds": mean_per_instance_us["jsonschema"]
        / mean_per_instance_us["tether"],
        "per_schema_speedup": bench.summary(per_schema_ratio),
        "agreement": agreements,
        "tether_disagreements": tether_disagreements,
        "jsonschema_disagreements_count": len(jsonschema_disagreements),
        "jsonschema_disagreements": jsonschema_disagreements,
        "compile_failure_details": compile_fail,
        "evaluation_failure_details": eval_fail,
    }
    rows = [
        (
            s,
            bench.fmt(per_instance_us[s], 2),
            bench.fmt(per_instance_us["jsonschema"] / per_instance_us[s], 1),
            len(compile_fail[s]),
            len(eval_fail[s]),
            f"{agreements[s]['own_compiled_schemas']['rate']:.2%}",
            f"{agreements[s]['schemas_both_compile']['rate']:.2%}",
        )
        for s in sides
    ]
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="JSON Schema validation: tether (jsonschema-rs) vs jsonschema",
        header=(
            "validator",
            "µs / instance",
            "speed vs jsonschema",
            "cannot compile",
            "raise on evaluation",
            "label agreement (own schemas)",
            "label agreement (common schemas)",
        ),
        rows=rows,
        notes=[
            f"{len(files)} maskbench schemas; {n_instances} instances of {len(timed)} schemas "
            f"timed; fastest of {args.rounds} rounds x {args.repeat} passes; mean over rounds "
            f"gives {payload['speedup_mean_over_rounds']:.1f}x.",
            f"per-schema speed-up: median {statistics.median(per_schema_ratio):.1f}x.",
            f"tether disagrees with the labels on {len(tether_disagreements)} instances "
            "(listed in the JSON); jsonschema on "
            f"{len(jsonschema_disagreements)}.",
            "jsonschema checks fewer formats here (optional format libraries not installed).",
        ],
    )
    bench.console.print(
        f"jsonschema/tether per-instance time: {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f})"
    )
    return payload


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    main()
