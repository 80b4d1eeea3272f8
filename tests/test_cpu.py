"""CPU facts read from /proc/cpuinfo: the flags that pick MiniLM's int8 kernels."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.cpu import cpuinfo_field, has_vnni


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f avx512_vnni avx512_bf16", True),
        ("fpu sse2 avx2 avx_vnni", True),
        ("fpu sse2 avx avx2 fma", False),
    ],
)
def test_vnni_is_read_from_the_cpu_flags(flags: str, expected: bool, tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: some CPU\nflags\t\t: {flags}\n\n")
    assert has_vnni(cpuinfo) is expected


def test_without_cpu_flags_the_kernels_exact_everywhere_are_kept(tmp_path: Path) -> None:
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert has_vnni(arm) is False
    assert has_vnni(tmp_path / "missing") is False


def test_a_field_is_read_from_the_first_processor(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\n\nprocessor\t: 1\n"
                       "model name\t: Another\n")  # fmt: skip
    assert cpuinfo_field("model name", cpuinfo) == "Some CPU 9000"
    assert cpuinfo_field("flags", cpuinfo) is None
