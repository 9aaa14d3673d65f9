"""Make the variant directories with optimum (the heavy half of `models.variants`):
:func:`export_variants` exports fp32 and makes each asked variant beside it, one
directory at a time (:func:`build_variant`).

optimum writes its graph as model_optimized.onnx / model_quantized.onnx into a working
folder, with its own copies of the config and tokenizer; only the graph (renamed model.onnx)
and its ort_config.json are kept. The tokenizer files and config.json are copied from the
fp32 directory byte for byte, so every variant tokenizes exactly as fp32 does, and
serving.json is written by `serving_info` as for the export. The directory is assembled
beside its target and renamed into place only once the services' `Classifier` has loaded it.

`from optimum.onnxruntime import ORTQuantizer` imports transformers' trainer utilities, which
need torch: this module must not run with USE_TORCH=0 (the services set it, never import it).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from optimum.onnxruntime import ORTOptimizer, ORTQuantizer
from optimum.onnxruntime.configuration import (
    AutoOptimizationConfig,
    AutoQuantizationConfig,
    OptimizationConfig,
    ORTConfig,
    QuantizationConfig,
)
from optimum.onnxruntime.utils import ORTConfigManager
from optimum.utils import NormalizedConfigManager

from servebench import paths
from servebench.models.export import building, export_model, graph_facts, resolve_output_dir
from servebench.models.isa import CpuIsa, detect_isa
from servebench.models.parity import PARITY_FILE
from servebench.models.reference import SEED_SENTENCE
from servebench.models.serving_info import EXPORT_FILE, FILES, SERVING_FILE, write_serving_info
from servebench.models.variants import (
    BASE,
    DECISIONS,
    QUANTIZED,
    VariantError,
    VariantResult,
    existing_variant,
    fp32_stamp,
    ordered,
    recipe,
    variant_dir,
    variant_fingerprint,
    versions,
)
from servekit.inference import Classifier

ORT_CONFIG = "ort_config.json"  # optimum's record of the config it applied; kept
_WORK = ".optimum"  # optimum's output folder inside the directory being built
# Files of the fp32 directory that describe fp32 itself, not the model's text handling.
_FP32_ONLY = (EXPORT_FILE, PARITY_FILE, SERVING_FILE)


def _model_type(fp32_dir: Path) -> str:
    return str(json.loads((fp32_dir / FILES["config"]).read_text()).get("model_type", ""))


def check_feasible(variant: str, chosen: dict[str, Any], fp32_dir: Path) -> None:
    """Refuse, before anything is built, a variant optimum cannot make from `fp32_dir`."""
    onnx = fp32_dir / FILES["onnx"]
    if any(p.name != onnx.name for p in fp32_dir.glob(f"{onnx.name}*")):
        # Over 2 GB the graph's weights live in model.onnx_data, which ORTOptimizer deletes
        # from its source folder after optimizing (it assumes a copy): keep the export whole.
        raise VariantError(
            f"variant {variant!r} cannot be made: {onnx} keeps its weights in external data "
            "files (a model over 2 GB); only fp32 is served for such models"
        )
    if variant == "optimized":
        model_type = _model_type(fp32_dir)
        try:
            NormalizedConfigManager.get_normalized_config_class(model_type)
            ORTConfigManager.check_optimization_supported_model(model_type, _optimization(chosen))
        except (KeyError, NotImplementedError):
            raise VariantError(
                f"variant 'optimized' cannot be made for model type {model_type!r}: "
                "ORTOptimizer (ONNX Runtime's transformer optimizer) does not support it; "
                "drop 'optimized' from `variants`"
            ) from None


def _optimization(chosen: dict[str, Any]) -> OptimizationConfig:
    return AutoOptimizationConfig.with_optimization_level(
        chosen["level"], for_gpu=chosen["for_gpu"]
    )


def _quantization(chosen: dict[str, Any], exclude: list[str] | None = None) -> QuantizationConfig:
    """optimum's preset for the recipe's instruction set; static: MatMul only, `exclude`
    (node names) left in fp32 (the pooler and classifier Gemms stay fp32 too)."""
    preset = getattr(AutoQuantizationConfig, chosen["preset"])
    options: dict[str, Any] = {
        "is_static": chosen["is_static"],
        "per_channel": chosen["per_channel"],
    }
    if chosen["is_static"]:
        options |= {"operators_to_quantize": ["MatMul"], "nodes_to_exclude": exclude or []}
    if chosen["preset"] in ("avx2", "avx512"):  # the VNNI and arm64 presets fix it to False
        options["reduce_range"] = chosen["reduce_range"]
    return preset(**options)


def _record(config: OptimizationConfig | QuantizationConfig) -> dict[str, Any]:
    """The config as optimum writes it to ort_config.json (enums as names)."""
    key = "quantization" if isinstance(config, QuantizationConfig) else "optimization"
    return ORTConfig(**{key: config}).to_dict()[key]


class Made(NamedTuple):
    config: OptimizationConfig | QuantizationConfig  # what optimum applied
    selection: dict[str, Any] | None  # int8-static: how its recipe was chosen


def _make(variant: str, chosen: dict[str, Any], fp32_dir: Path, scratch: Path) -> Made:
    """optimum's graph for `variant`, assembled into `scratch` (:func:`_assemble`)."""
    work = scratch / _WORK
    if variant == "int8-static":
        from servebench.models import static_int8  # datasets: only this variant needs it

        graph, config, selection = static_int8.choose_and_make(
            fp32_dir,
            work,
            lambda exclude: _quantization(chosen, exclude),
            lambda directory, g: _assemble(directory, fp32_dir, g),
        )
        for made in graph.parent.iterdir():  # the chosen candidate's assembled directory
            made.rename(scratch / made.name)
        shutil.rmtree(work)
        return Made(config, selection)
    stem = Path(FILES["onnx"]).stem
    if variant == "optimized":
        optimization = _optimization(chosen)
        optimizer = ORTOptimizer.from_pretrained(fp32_dir, file_names=[FILES["onnx"]])
        optimizer.optimize(optimization, work, file_suffix="optimized")
        _assemble(scratch, fp32_dir, work / f"{stem}_optimized.onnx")
        return Made(optimization, None)
    quantization = _quantization(chosen)
    quantizer = ORTQuantizer.from_pretrained(fp32_dir, file_name=FILES["onnx"])
    quantizer.quantize(quantization, work, file_suffix="quantized")
    _assemble(scratch, fp32_dir, work / f"{stem}_quantized.onnx")
    return Made(quantization, None)


def _assemble(scratch: Path, fp32_dir: Path, graph: Path) -> None:
    """The variant's files: fp32's tokenizer and config files, optimum's graph as model.onnx,
    optimum's ort_config.json, serving.json for the graph; optimum's other copies are dropped."""
    for source in fp32_dir.iterdir():
        graph_file = source.name.startswith(FILES["onnx"])  # model.onnx and its data
        if source.is_file() and source.name not in _FP32_ONLY and not graph_file:
            shutil.copy2(source, scratch / source.name)
    graph.rename(scratch / FILES["onnx"])
    if (graph.parent / ORT_CONFIG).is_file():
        (graph.parent / ORT_CONFIG).rename(scratch / ORT_CONFIG)
    shutil.rmtree(graph.parent)
    facts = graph_facts(scratch / FILES["onnx"])
    write_serving_info(scratch, facts.inputs, facts.outputs)


def _check_loads(directory: Path) -> None:
    """The services' own loader must accept the directory before it is published."""
    classifier = Classifier(directory, threads=1)
    classifier.classify(SEED_SENTENCE)


def build_variant(
    model_id: str,
    variant: str,
    chosen: dict[str, Any],
    cpu: CpuIsa,
    fp32_dir: Path,
    target: Path,
    fingerprint: dict[str, Any],
) -> VariantResult:
    """Make `variant` of the fp32 export in `fp32_dir` into `target` (atomically)."""
    started = time.perf_counter()
    fp32_record = json.loads((fp32_dir / EXPORT_FILE).read_text())
    with building(target) as scratch:
        scratch.mkdir()
        try:
            made = _make(variant, chosen, fp32_dir, scratch)
            facts = graph_facts(scratch / FILES["onnx"])
            made_at = time.perf_counter()
            _check_loads(scratch)
        except Exception as error:  # optimum, ONNX Runtime or the loader: one line
            first = (str(error).strip().splitlines() or [""])[0][:300]
            raise VariantError(
                f"variant {variant!r} of {model_id} could not be made: "
                f"{type(error).__name__}: {first}"
            ) from error
        quantized = variant in QUANTIZED
        result = VariantResult(
            model_id=model_id,
            variant=variant,
            output_dir=str(target),
            fp32_dir=str(fp32_dir),
            onnx_bytes=(scratch / FILES["onnx"]).stat().st_size,
            inputs=facts.inputs,
            outputs=facts.outputs,
            opset=facts.opset,
            fingerprint=fingerprint,
            recipe=chosen,
            isa=cpu.isa if quantized else None,
            cpu=cpu.to_dict() if quantized else None,
            quantization=_record(made.config) if quantized else None,
            optimization=None if quantized else _record(made.config),
            decision=DECISIONS[variant],
            fused_operators={} if quantized else _fused(scratch / FILES["onnx"]),
            selection=made.selection,
            note=fp32_record.get("note"),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            versions=versions(),
            timings={
                "make_s": round(made_at - started, 3),
                "total_s": round(time.perf_counter() - started, 3),
            },
        )
        (scratch / EXPORT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _fused(graph: Path) -> dict[str, int]:
    """How many of each fused operator ORTOptimizer wrote (what O2 bought)."""
    return {k: int(v) for k, v in ORTOptimizer.get_fused_operators(str(graph)).items()}


def export_variants(
    model_id: str,
    variants: Iterable[str] = (BASE,),
    *,
    opset: int | None = 17,
    cache_dir: Path = paths.MODELS / ".cache",
    output_dir: str | Path | None = None,
    force: bool = False,
    cpu: CpuIsa | None = None,
) -> dict[str, VariantResult]:
    """Export fp32 (`export_model`, cached) and make each asked variant beside it.

    Every asked variant is checked before any is built (unknown name, no int8 preset for the
    CPU, a model type ORTOptimizer does not support...): VariantError, one line. `cpu`
    overrides the detected instruction set (tests)."""
    cpu = cpu or detect_isa()
    chosen = {v: recipe(v, cpu) for v in ordered(variants) if v != BASE}  # before any export
    fp32_dir = resolve_output_dir(model_id, output_dir)
    exported = export_model(model_id, fp32_dir, opset=opset, cache_dir=cache_dir, force=force)
    for variant, choice in chosen.items():  # what needs the exported config.json and graph
        check_feasible(variant, choice, fp32_dir)
    results = {BASE: VariantResult.from_export(exported, fp32_dir)}
    if not chosen:
        return results
    stamp, tools = fp32_stamp(fp32_dir), versions()
    for variant, choice in chosen.items():
        target = variant_dir(fp32_dir, variant)
        fingerprint = variant_fingerprint(variant, stamp, choice, tools)
        done = None if force else existing_variant(target, fp32_dir, fingerprint)
        results[variant] = done or build_variant(
            model_id, variant, choice, cpu, fp32_dir, target, fingerprint
        )
    return results
