"""Which int8 kernels this CPU runs: the instruction set read at run time, never assumed.

optimum's `AutoQuantizationConfig` has one preset per CPU family (`avx512_vnni`, `avx512`,
`avx2`, `arm64`); they differ in the weights' type and in `reduce_range`. The choice follows
what ONNX Runtime's MLAS kernels use on the machine that quantizes (and serves: the study
quantizes where it measures), read from the kernel's /proc/cpuinfo flags and
`platform.machine()`. Pure code: no optimum or onnxruntime import, so it is cheap to test.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
ISAS = ("avx512_vnni", "avx512", "avx2", "arm64")  # optimum's presets, best first
X86 = ("x86_64", "amd64", "i686", "i386")
ARM64 = ("aarch64", "arm64")
# MLAS takes its AVX-512 int8 path only with the "AVX-512 core" subset (F, BW, DQ, VL), and
# its AVX2 path needs FMA as well; a flag alone (avx512f on Knights Landing) is not enough.
_AVX512_CORE = ("avx512f", "avx512bw", "avx512dq", "avx512vl")
_REQUIRED = {
    "avx512_vnni": (*_AVX512_CORE, "avx512_vnni"),
    "avx512": _AVX512_CORE,
    "avx2": ("avx2", "fma"),
}
# Without VNNI, x86 int8 kernels multiply u8 x s8 with VPMADDUBSW, whose 16-bit sums can
# saturate; ONNX Runtime's quantization guide (FAQ "When to use reduce-range and per-channel
# quantization?") advises 7-bit weights (reduce_range) with per-channel weights on AVX2 and
# AVX-512 machines, and says VNNI machines do not need it. AVX-VNNI (no AVX-512) counts.
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni")
# Recorded for arm64: the dot-product extension is what makes int8 fast there.
_ARM_FLAGS = ("asimd", "asimddp", "i8mm")


@dataclass(frozen=True)
class CpuIsa:
    """The detected instruction set (None: no int8 preset fits) and why."""

    isa: str | None
    machine: str
    cpu_model: str
    deciding_flags: list[str] = field(default_factory=list)  # the flags that chose `isa`
    reduce_range: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo text: `flags` on x86, `Features` on ARM (the
    first processor's line; every core of one machine reports the same)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def cpu_model_name(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("model name", "cpu model", "hardware"):
            return value.strip()
    return ""


def read_cpuinfo(path: Path = CPUINFO) -> str:
    """/proc/cpuinfo, or '' where there is none (macOS): then only arm64 is recognised."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def detect_isa(cpuinfo: str | None = None, machine: str | None = None) -> CpuIsa:
    """The int8 preset for this CPU (or for the given cpuinfo text and machine, in tests)."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    arch = (platform.machine() if machine is None else machine).lower()
    flags = cpu_flags(text)
    model = cpu_model_name(text)
    if arch in ARM64:
        found = [f for f in _ARM_FLAGS if f in flags]
        return CpuIsa("arm64", arch, model, found, False, f"{arch} CPU: optimum's arm64 preset")
    if arch not in X86:
        return CpuIsa(None, arch, model, [], False, f"no int8 preset for a {arch or '?'} CPU")
    for isa, required in _REQUIRED.items():
        if all(flag in flags for flag in required):
            vnni = [f for f in _VNNI_FLAGS if f in flags]
            reduce_range = isa != "avx512_vnni" and not vnni
            why = (
                "VNNI: no u8 x s8 saturation, full-range weights"
                if not reduce_range
                else "no VNNI: 7-bit weights (reduce_range) against u8 x s8 saturation"
            )
            deciding = list(dict.fromkeys([*required, *vnni]))
            return CpuIsa(isa, arch, model, deciding, reduce_range, why)
    source = "its /proc/cpuinfo flags" if flags else "no /proc/cpuinfo flags to read"
    return CpuIsa(None, arch, model, [], False, f"{arch} CPU without AVX2+FMA ({source})")
