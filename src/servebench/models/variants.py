"""Model variants: the fp32 export, and directories made from it with optimum.

* `fp32`: the export itself (`export_model`), data/models/<slug>;
* `optimized`: `ORTOptimizer`, `AutoOptimizationConfig.O2` for CPU, data/models/<slug>.optimized;
* `int8`: `ORTQuantizer`, dynamic quantization with the `AutoQuantizationConfig` preset of the
  CPU's instruction set detected at run time (`models.isa`), data/models/<slug>.int8;
* `int8-static`: `ORTQuantizer`, static quantization with the same preset, calibrated on the
  calibration split of the sentiment sentences, its recipe chosen by measurement
  (`static_int8`), data/models/<slug>.int8-static.

Every variant directory has the fp32 export's layout (model.onnx, the very same tokenizer
files and config.json, serving.json written by `serving_info`, export.json), so every
service serves it unchanged. A variant is rebuilt only when its fingerprint changes (the
fp32 graph, the recipe, the ISA, the optimum/onnxruntime versions), and atomically.

The optimum calls (and the optimum.onnxruntime import, which needs torch) live in
`variant_build`; this module holds the names, recipes, fingerprints and records, which the
faithfulness check and the unit tests use without it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from servebench.config import VARIANTS
from servebench.models.isa import CpuIsa
from servebench.models.sentiment_data import SENTENCES_TSV, data_fingerprint
from servebench.models.serving_info import EXPORT_FILE, FILES, finished_record

BASE = "fp32"
VARIANT_LAYOUT = 1  # bump when a variant directory's content or its making changes
_VERSIONED = ("optimum", "optimum-onnx", "onnxruntime", "onnx")

# The decisions, recorded in every variant's export.json (numbers measured on the study's
# 2-core Xeon with AVX-512 VNNI, minilm-sentiment, the services' Classifier, pinned, 1 thread).
OPTIMIZATION_LEVEL = "O2"
OPTIMIZATION_DECISION = (
    "O2: ONNX Runtime's transformer fusions (Attention, SkipLayerNormalization, BiasGelu), "
    "exact math (max |logit - fp32| 1e-6). Not O3: its GELU approximation (FastGelu) moved "
    "logits by 3e-4, over the 1e-4 parity tolerance, for no speed gain; not O4 (fp16, GPU only)."
)
INT8_GRAPH = "fp32"  # which graph is quantized: the plain export, not the O2 graph
INT8_DECISION = (
    "dynamic quantization (ONNX Runtime's advice for transformers) of the plain fp32 export, "
    "per-channel weights. ORT advises quantizing the transformer-optimized graph (QAttention), "
    "but here that needed an extra symbolic shape inference pass, was no faster (O2 graph vs "
    "plain, ms per inference: seed sentence 1.77 vs 1.83, medium 5.9 vs 5.1, long 73 vs 80) "
    "and agreed less with fp32 (333 vs 334 of 334 sentences, max |score diff| 0.37 vs 0.14)."
)


INT8_STATIC_DECISION = (
    "static quantization (QDQ, MatMul only, per-channel int8 weights, activation ranges fixed "
    "by calibration) of the plain fp32 export: every row of a batch is quantized with the same "
    "scales whoever shares it, so an answer never depends on batch-mates, which dynamic int8's "
    "per-batch DynamicQuantizeLinear cannot promise. The recipe is chosen among candidates by "
    "measurement (see `selection`)."
)


@dataclass(frozen=True)
class Candidate:
    """One static recipe: how activation ranges are calibrated, and which MatMuls."""

    name: str
    method: str  # AutoCalibrationConfig's: minmax, percentiles, entropy
    percentile: float | None = None
    attention_matmuls: bool = True  # False: activation x activation MatMuls stay fp32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CANDIDATES = (
    Candidate("minmax", "minmax"),
    Candidate("percentile-99.999", "percentiles", percentile=99.999),
    Candidate("minmax, attention fp32", "minmax", attention_matmuls=False),
    Candidate("percentile-99.999, attention fp32", "percentiles", 99.999, False),
)
CHOSEN_BY = (
    "most labels agreeing with fp32 on the selection sentences (training sentences outside "
    "the calibration split), then the smallest mean |score - fp32's| there"
)


#: The variants quantized to int8 (their preset follows the CPU's instruction set).
QUANTIZED = ("int8", "int8-static")

#: Why each variant optimum makes is made as it is (export.json `decision`).
DECISIONS = {
    "optimized": OPTIMIZATION_DECISION,
    "int8": INT8_DECISION,
    "int8-static": INT8_STATIC_DECISION,
}


class VariantError(RuntimeError):
    """A variant that cannot be made or is not faithful to fp32 (one line: variant, reason)."""


@dataclass
class VariantResult:
    """What a variant directory holds and how it was made (its export.json, except fp32's,
    which is the export's own record and reads back through `from_export`)."""

    model_id: str
    variant: str
    output_dir: str
    fp32_dir: str
    onnx_bytes: int
    inputs: list[str]
    outputs: list[str]
    opset: int | None
    fingerprint: dict[str, Any]
    recipe: dict[str, Any] = field(default_factory=dict)
    isa: str | None = None  # int8 only: the preset's instruction set
    cpu: dict[str, Any] | None = None  # int8 only: machine, model name, deciding flags, why
    quantization: dict[str, Any] | None = None  # optimum's QuantizationConfig, as recorded
    optimization: dict[str, Any] | None = None  # optimum's OptimizationConfig, as recorded
    decision: str = ""
    fused_operators: dict[str, int] = field(default_factory=dict)
    selection: dict[str, Any] | None = None  # int8-static: the split, candidates, choice
    note: str | None = None  # the fp32 export's: set when predictions are meaningless
    created: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    skipped: bool = False

    @property
    def onnx_mb(self) -> float:
        return self.onnx_bytes / 1e6

    @property
    def quantization_summary(self) -> str:
        """One phrase for tables: 'none' or e.g. 'dynamic int8, QInt8 per-channel weights'."""
        q = self.quantization
        if not q:
            return "none"
        kind = "static" if q.get("is_static") else "dynamic"
        scope = "per-channel" if q.get("per_channel") else "per-tensor"
        reduced = ", reduce_range" if q.get("reduce_range") else ""
        return f"{kind} int8, {q.get('weights_dtype')} {scope} weights{reduced}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_export(cls, export: Any, fp32_dir: Path) -> VariantResult:
        """The fp32 row, from the `ExportResult` of `export_model`."""
        return cls(
            model_id=export.model_id,
            variant=BASE,
            output_dir=str(fp32_dir),
            fp32_dir=str(fp32_dir),
            onnx_bytes=export.onnx_bytes,
            inputs=list(export.inputs),
            outputs=list(export.outputs),
            opset=export.opset,
            fingerprint=export.fingerprint,
            decision="the optimum ONNX export itself",
            note=export.note,
            created=export.created,
            versions=dict(export.versions),
            timings=dict(export.timings),
            skipped=export.skipped,
        )


def ordered(variants: Iterable[str]) -> list[str]:
    """fp32 (always: every variant is made from it) and the asked ones, in VARIANTS order;
    an unknown name is refused."""
    asked = set(variants)
    unknown = sorted(asked - set(VARIANTS))
    if unknown:
        raise VariantError(
            f"variant {unknown[0]!r}: unknown; known variants: {', '.join(VARIANTS)}"
        )
    return [v for v in VARIANTS if v == BASE or v in asked]


def variant_dir(fp32_dir: Path, variant: str) -> Path:
    """A variant beside its fp32 directory, <fp32 dir>.<variant> (paths.variant_model_dir's
    rule, applied to any fp32 directory, e.g. a test's temporary one)."""
    return fp32_dir if variant == BASE else fp32_dir.with_name(f"{fp32_dir.name}.{variant}")


def recipe(variant: str, cpu: CpuIsa) -> dict[str, Any]:
    """The choices that make `variant` (what optimum is asked for); VariantError if the CPU
    has no int8 preset."""
    if variant == "optimized":
        return {"tool": "ORTOptimizer", "level": OPTIMIZATION_LEVEL, "for_gpu": False}
    if variant in QUANTIZED:
        if cpu.isa is None:
            raise VariantError(
                f"variant {variant!r} cannot be made on this CPU: {cpu.reason}; optimum's "
                f"int8 presets need AVX2, AVX-512 (VNNI) or arm64 (drop {variant} from "
                "`variants`)"
            )
        made = {
            "tool": "ORTQuantizer",
            "preset": cpu.isa,
            "is_static": variant == "int8-static",
            "per_channel": True,  # what levers.md measured: 333/334 labels kept, 3.3x
            "reduce_range": cpu.reduce_range,
            "graph": INT8_GRAPH,
        }
        if variant == "int8-static":  # what calibrates it: a change re-makes the variant
            made["calibration_data"] = data_fingerprint(SENTENCES_TSV)[:16]
            made["candidates"] = [c.to_dict() for c in CANDIDATES]
        return made
    raise VariantError(f"variant {variant!r}: not made by optimum (fp32 is the export)")


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in _VERSIONED}


def fp32_stamp(fp32_dir: Path) -> dict[str, Any]:
    """What a variant is made from: the fp32 export's fingerprint and its graph's content
    (a forced re-export with new weights changes the hash, not the fingerprint)."""
    record = json.loads((fp32_dir / EXPORT_FILE).read_text())
    digest = hashlib.sha256()
    with (fp32_dir / FILES["onnx"]).open("rb") as graph:
        for block in iter(lambda: graph.read(1 << 20), b""):
            digest.update(block)
    return {"fingerprint": record.get("fingerprint"), "onnx_sha256": digest.hexdigest()[:16]}


def variant_fingerprint(
    variant: str, stamp: dict[str, Any], chosen: dict[str, Any], tools: dict[str, str]
) -> dict[str, Any]:
    """Two builds with equal fingerprints make the same directory: rebuild only on change."""
    return {
        "variant": variant,
        "fp32": stamp,
        "isa": chosen.get("preset"),
        "recipe": chosen,
        "versions": tools,
        "layout": VARIANT_LAYOUT,
    }


def existing_variant(
    target: Path, fp32_dir: Path, fingerprint: dict[str, Any]
) -> VariantResult | None:
    """The variant already in `target`, if complete (the services would load it) and made
    the same way, beside the fp32 export in `fp32_dir` (:func:`finished_record`: where the
    tree is now)."""
    data = finished_record(target, fingerprint)
    if data is None:
        return None
    return VariantResult.from_dict({**data, "fp32_dir": str(fp32_dir), "skipped": True})
