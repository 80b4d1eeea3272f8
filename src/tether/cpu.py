"""What the CPU offers, read from Linux's /proc/cpuinfo (empty where it cannot be read)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# Instructions whose int8 dot products accumulate in 32 bits (no 16-bit saturation).
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@lru_cache(maxsize=8)
def cpuinfo_field(name: str, cpuinfo: Path = CPUINFO) -> str | None:
    """The value of the first processor's `name` line ("model name", "flags", ...)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    return frozenset((cpuinfo_field("flags", cpuinfo) or "").split())


def has_vnni(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU's flags name VNNI; False where they cannot be read (ARM lists
    `Features`, other systems have no /proc/cpuinfo)."""
    return not VNNI_FLAGS.isdisjoint(cpu_flags(cpuinfo))
