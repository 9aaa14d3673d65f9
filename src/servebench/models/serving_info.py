"""serving.json: the one record of what the services need from a model directory.

The exporter derives each fact here once: the labels in class-id order, the maximum
sequence length, the graph's inputs and output, and the files the services load. The
Python services (servekit.inference, `ServingInfo`) and the Rust kit
(service/rust/servekit/src/model.rs) only read it, so no rule exists twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servekit.inference import SERVING_FILE, ModelDirError, ServingInfo

# The reader names the file it reads; the writer follows it.

# Role -> file. The services load `onnx` (both) and `tokenizer` (Rust); transformers'
# AutoTokenizer (Python) reads the tokenizer files and config.json of the directory.
FILES = {
    "onnx": "model.onnx",
    "tokenizer": "tokenizer.json",
    "tokenizer_config": "tokenizer_config.json",
    "config": "config.json",
}
# How the directory was made (the exporter's or a variant's record); not read by the services.
EXPORT_FILE = "export.json"
OUTPUT = "logits"  # what optimum's text-classification export names the scores
# BERT's; used when config.json does not say (as the services did before this file existed).
DEFAULT_MAX_POSITIONS = 512


def labels(config: dict[str, Any]) -> list[str]:
    """config.json's id2label ({"0": "NEGATIVE", "1": "POSITIVE"}) as a list indexed by id."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ValueError("config.json has no id2label")
    try:
        by_id = {int(key): value for key, value in id2label.items()}
    except ValueError:
        raise ValueError(
            f"config.json id2label keys {sorted(id2label)} are not class ids"
        ) from None
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"config.json id2label ids {sorted(by_id)} are not 0..{len(by_id) - 1}")
    if not all(isinstance(label, str) and label for label in by_id.values()):
        raise ValueError("config.json id2label has a label that is not a non-empty string")
    return [by_id[i] for i in range(len(by_id))]


def max_sequence_length(config: dict[str, Any], tokenizer_config: dict[str, Any]) -> int:
    """min(tokenizer_config.model_max_length, config.max_position_embeddings), special tokens
    included. A missing, null or zero model_max_length means the tokenizer has no limit of its
    own, and so does the huge sentinel (1e30) transformers writes in that case."""
    positions = config.get("max_position_embeddings")
    positions = DEFAULT_MAX_POSITIONS if positions is None else int(positions)
    declared = tokenizer_config.get("model_max_length") or positions
    length = min(int(declared), positions)
    if length < 1:
        raise ValueError(
            f"maximum sequence length {length} (model_max_length {declared}, "
            f"max_position_embeddings {positions}) is not positive"
        )
    return length


def serving_info(
    config: dict[str, Any],
    tokenizer_config: dict[str, Any],
    inputs: Sequence[str],
    outputs: Sequence[str],
) -> dict[str, Any]:
    """The content of serving.json for a graph with `inputs` and `outputs`."""
    if OUTPUT not in outputs:
        raise ValueError(f"the ONNX graph has no '{OUTPUT}' output (outputs: {', '.join(outputs)})")
    if not inputs:
        raise ValueError("the ONNX graph declares no inputs")
    return {
        "labels": labels(config),
        "max_length": max_sequence_length(config, tokenizer_config),
        "inputs": list(inputs),
        "output": OUTPUT,
        "files": dict(FILES),
    }


def write_serving_info(
    directory: Path, inputs: Sequence[str], outputs: Sequence[str]
) -> dict[str, Any]:
    """Write serving.json into an exported directory (its config files already final)."""

    def read(role: str) -> dict[str, Any]:
        return json.loads((directory / FILES[role]).read_text())

    info = serving_info(read("config"), read("tokenizer_config"), inputs, outputs)
    (directory / SERVING_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def is_complete(directory: Path) -> bool:
    """Whether the services would accept `directory` (serving.json and every file it lists)."""
    try:
        ServingInfo.read(directory)
    except ModelDirError:
        return False
    return True


def finished_record(directory: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The export.json of `directory` if the directory is complete and was made with this
    fingerprint (the export's or a variant's): then it need not be made again. Its
    ``output_dir`` is `directory`, where it was found, not where it was made: a model tree that
    was moved or is reached through a link is still usable."""
    record = directory / EXPORT_FILE
    if not record.is_file() or not is_complete(directory):
        return None
    data = json.loads(record.read_text())
    if data.get("fingerprint") != fingerprint:
        return None
    return {**data, "output_dir": str(directory)}
