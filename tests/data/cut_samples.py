"""Cut the vendored test samples in tests/data/ from a full copy of the data sets.

    python tests/data/cut_samples.py --source FULL_COPY

The full copy has the layout of tests/data (json/, schemas/maskbench/, sentiment/, paraphrase/).
Every file is copied byte for byte; a sample only leaves files or rows out:

- json/JSONTestSuite/*.json: every file.
- json/blns/blns.json: the whole file.
- paraphrase/stsb-en-dev.csv: the whole file (1,500 pairs).
- sentiment/yelp_labelled.tsv: the header line plus YELP_ROWS review lines drawn with
  random.Random(SEED).sample over the review lines (lines split on b"\\n" only), kept in file
  order.
- routing/mmlu/: three whole files (MMLU_FILES).
- routing/gsm8k/gsm8k_responses.csv: the header record plus GSM8K_ROWS records drawn with
  random.Random(SEED).sample, kept in file order; a record (quoted fields span lines) is copied
  byte for byte.
- schemas/maskbench/*.json: of the files of at most MASKBENCH_MAX_BYTES bytes (sorted by name),
  MASKBENCH_FILES drawn with random.Random(SEED).sample, kept in name order.

Tests never run this script; it documents the cut and regenerates it. `--check` compares the
cut with what is in --dest instead of writing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

SEED = 20240601
YELP_ROWS = 200
MASKBENCH_FILES = 300
MASKBENCH_MAX_BYTES = 100_000
MASKBENCH_MAX_TOTAL = 5_000_000
GSM8K_ROWS = 250
GSM8K = "routing/gsm8k/gsm8k_responses.csv"
MMLU_FILES = tuple(
    f"routing/mmlu/mmlu_{domain}.csv"
    for domain in ("abstract_algebra", "college_physics", "global_facts")
)

HERE = Path(__file__).resolve().parent
WHOLE = ("json/blns/blns.json", "paraphrase/stsb-en-dev.csv", *MMLU_FILES)
FOLDERS = ("json/JSONTestSuite", "schemas/maskbench")  # emptied of *.json before a cut


def yelp_sample(data: bytes) -> bytes:
    """The header line and YELP_ROWS seeded review lines, in file order, bytes unchanged."""
    lines = data.split(b"\n")
    trailing = lines[-1] == b""
    if trailing:
        lines.pop()
    header, reviews = lines[0], lines[1:]
    keep = sorted(random.Random(SEED).sample(range(len(reviews)), YELP_ROWS))
    chosen = [header, *(reviews[i] for i in keep)]
    return b"\n".join(chosen) + (b"\n" if trailing else b"")


def csv_records(data: bytes) -> list[bytes]:
    """The file's CSV records as their raw bytes: a record whose quoted field holds line breaks
    spans several lines."""
    lines = data.splitlines(keepends=True)
    records: list[bytes] = []
    pending: list[bytes] = []
    for line in lines:
        pending.append(line)
        # A record ends where its quotes balance (a doubled quote inside a field counts twice).
        if b"".join(pending).count(b'"') % 2 == 0:
            records.append(b"".join(pending))
            pending = []
    if pending:
        records.append(b"".join(pending))
    return records


def gsm8k_sample(data: bytes) -> bytes:
    """The header record and GSM8K_ROWS seeded records, in file order, bytes unchanged."""
    header, *rows = csv_records(data)
    keep = sorted(random.Random(SEED).sample(range(len(rows)), GSM8K_ROWS))
    return header + b"".join(rows[i] for i in keep)


def maskbench_sample(folder: Path) -> list[Path]:
    eligible = sorted(
        (p for p in folder.glob("*.json") if p.stat().st_size <= MASKBENCH_MAX_BYTES),
        key=lambda p: p.name,
    )
    chosen = random.Random(SEED).sample(eligible, MASKBENCH_FILES)
    return sorted(chosen, key=lambda p: p.name)


def cut(source: Path, dest: Path) -> None:
    for folder in FOLDERS:
        target = dest / folder
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.json"):
            old.unlink()
    for case in sorted((source / "json" / "JSONTestSuite").glob("*.json")):
        shutil.copyfile(case, dest / "json" / "JSONTestSuite" / case.name)
    for relative in WHOLE:
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, dest / relative)
    yelp = "sentiment/yelp_labelled.tsv"
    (dest / yelp).parent.mkdir(parents=True, exist_ok=True)
    (dest / yelp).write_bytes(yelp_sample((source / yelp).read_bytes()))
    (dest / GSM8K).parent.mkdir(parents=True, exist_ok=True)
    (dest / GSM8K).write_bytes(gsm8k_sample((source / GSM8K).read_bytes()))
    schemas = maskbench_sample(source / "schemas" / "maskbench")
    total = sum(p.stat().st_size for p in schemas)
    if total > MASKBENCH_MAX_TOTAL:
        raise SystemExit(f"maskbench sample is {total:,} bytes, over {MASKBENCH_MAX_TOTAL:,}")
    for schema in schemas:
        shutil.copyfile(schema, dest / "schemas" / "maskbench" / schema.name)


def data_files(root: Path) -> dict[str, bytes]:
    found = {
        str(p.relative_to(root)): p.read_bytes()
        for folder in FOLDERS
        for p in (root / folder).glob("*.json")
    }
    for relative in (*WHOLE, "sentiment/yelp_labelled.tsv", GSM8K):
        path = root / relative
        if path.exists():
            found[relative] = path.read_bytes()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, required=True, help="a full copy of the data sets")
    parser.add_argument("--dest", type=Path, default=HERE, help="where the samples go")
    parser.add_argument(
        "--check", action="store_true", help="compare with --dest instead of writing to it"
    )
    args = parser.parse_args(argv)
    if not args.check:
        cut(args.source, args.dest)
        print(f"samples written under {args.dest}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        cut(args.source, Path(scratch))
        expected, present = data_files(Path(scratch)), data_files(args.dest)
    differ = sorted(
        name for name in expected.keys() | present.keys() if expected.get(name) != present.get(name)
    )
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(expected)} files expected, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
