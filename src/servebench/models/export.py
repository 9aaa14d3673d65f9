"""Export a sequence-classification model to the service's model directory (ONNX + tokenizer)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import onnx
from optimum.exporters.onnx import main_export
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from servebench import paths
from servebench.models import builtin
from servebench.models.serving_info import (
    EXPORT_FILE,
    FILES,
    finished_record,
    write_serving_info,
)
from servebench.models.source import DEFAULT_CACHE_DIR, prepare_source, source_kind
from servebench.models.tokenizer import normalize_tokenizer_files

DEFAULT_OPSET = 17  # what configs/default.yaml, the CLI and tests use; ORT 1.32 runs it
EXPORT_LAYOUT = 2  # bump when the directory layout or post-processing changes (2: serving.json)
_VERSIONED = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime")


@dataclass
class ExportResult:
    model_id: str
    output_dir: str
    source: str
    source_kind: str
    opset: int | None
    onnx_bytes: int
    parameters: int
    inputs: list[str]
    outputs: list[str]
    fingerprint: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    note: str | None = None
    created: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    skipped: bool = False

    @property
    def onnx_mb(self) -> float:
        return self.onnx_bytes / 1e6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def resolve_output_dir(model_id: str, output_dir: str | Path | None) -> Path:
    """Empty/None means the project default, data/models/<slug>."""
    return Path(output_dir) if output_dir else paths.default_model_dir(model_id)


def export_fingerprint(model_id: str, opset: int | None) -> dict[str, Any]:
    """What makes two exports the same: model id, opset and the recipe (built-in) or files."""
    kind = source_kind(model_id)
    recipe = None
    if kind == "builtin":
        recipe = builtin.recipe_key(model_id)
    elif kind == "local":
        recipe = _directory_stamp(Path(model_id).expanduser())
    return {"model_id": model_id, "opset": opset, "recipe": recipe, "layout": EXPORT_LAYOUT}


def _directory_stamp(directory: Path) -> str:
    """A cheap fingerprint of a local model directory: file names, sizes and mtimes."""
    stats = sorted(
        (str(f.relative_to(directory)), f.stat().st_size, f.stat().st_mtime_ns)
        for f in directory.rglob("*")
        if f.is_file()
    )
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def existing_export(output_dir: Path, fingerprint: dict[str, Any]) -> ExportResult | None:
    """The export already in output_dir, if it is complete and has this fingerprint."""
    data = finished_record(output_dir, fingerprint)
    return None if data is None else ExportResult.from_dict({**data, "skipped": True})


def export_model(
    model_id: str = builtin.DEFAULT_MODEL_ID,
    output_dir: str | Path | None = None,
    opset: int | None = DEFAULT_OPSET,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    force: bool = False,
) -> ExportResult:
    """Export `model_id` to `output_dir` (skipped if an identical export is already there)."""
    target = resolve_output_dir(model_id, output_dir)
    fingerprint = export_fingerprint(model_id, opset)
    if not force and (done := existing_export(target, fingerprint)) is not None:
        return done
    started = time.perf_counter()
    source = prepare_source(model_id, cache_dir)
    prepared = time.perf_counter()
    with building(target) as scratch:
        graph = _run_exporter(source, scratch, opset)
        exported = time.perf_counter()
        timings = {
            "prepare_source_s": round(prepared - started, 3),
            "export_s": round(exported - prepared, 3),
        }
        result = _describe(model_id, source, scratch, graph, fingerprint, timings)
        result.output_dir = str(target)
        result.timings["total_s"] = round(time.perf_counter() - started, 3)
        (scratch / EXPORT_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


@contextmanager
def building(target: Path) -> Iterator[Path]:
    """A scratch directory beside `target` that replaces it only if the block succeeds, so a
    failed build never leaves a half directory where the services look (same file system,
    so the final step is a rename)."""
    scratch = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield scratch
        _replace_dir(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class Graph(NamedTuple):
    inputs: list[str]
    outputs: list[str]
    opset: int | None  # of the default domain


def _run_exporter(source: Path | str, output: Path, opset: int | None) -> Graph:
    """Export, make the tokenizer files match the contract, then record serving.json."""
    main_export(
        str(source),
        output=output,
        task="text-classification",
        opset=opset,
        device="cpu",
        library_name="transformers",
        do_validation=False,  # check_parity compares PyTorch and ONNX Runtime itself
    )
    if not (output / FILES["tokenizer"]).is_file():  # a slow-only source tokenizer
        AutoTokenizer.from_pretrained(str(source), use_fast=True).save_pretrained(output)
    normalize_tokenizer_files(output)
    graph = graph_facts(output / FILES["onnx"])
    try:
        write_serving_info(output, graph.inputs, graph.outputs)
    except ValueError as error:
        raise RuntimeError(f"the export of {source} cannot be served: {error}") from None
    return graph


def graph_facts(model_path: Path) -> Graph:
    proto = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in initializers]
    opsets = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return Graph(inputs, [o.name for o in proto.graph.output], opsets[0] if opsets else None)


def _count_parameters(source: Path | str, info: dict[str, Any] | None) -> int:
    if info and "parameters" in info:
        return int(info["parameters"])
    model = AutoModelForSequenceClassification.from_pretrained(str(source))
    return builtin.count_parameters(model)


def _describe(
    model_id: str,
    source: Path | str,
    directory: Path,
    graph: Graph,
    fingerprint: dict[str, Any],
    timings: dict[str, float],
) -> ExportResult:
    kind = source_kind(model_id)
    info = builtin.source_info(Path(source)) if kind == "builtin" else None
    return ExportResult(
        model_id=model_id,
        output_dir=str(directory),
        source=str(source),
        source_kind=kind,
        opset=graph.opset or fingerprint["opset"],
        onnx_bytes=sum(f.stat().st_size for f in directory.glob(f"{FILES['onnx']}*")),
        parameters=_count_parameters(source, info),
        inputs=graph.inputs,
        outputs=graph.outputs,
        fingerprint=fingerprint,
        timings=timings,
        training=info if info and info.get("kind") == "fine-tuned" else None,
        note=builtin.MEANINGLESS_NOTE if model_id == builtin.DISTILBERT_SHAPE else None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        versions={name: metadata.version(name) for name in _VERSIONED},
    )


def _replace_dir(new: Path, target: Path) -> None:
    """Swap `new` into place; the old directory lives on only for the instant of the swap."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
