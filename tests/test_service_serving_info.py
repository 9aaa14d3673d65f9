"""serving.json without a model: the exporter's rules (labels, maximum length) and the
Python services' reader (inference.ServingInfo), with its start-up errors.

The Rust kit's reader has its own tests (service/rust/servekit/src/model.rs); every
service reading a real export is covered by tests/test_contract.py and test_faults.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servebench.models import serving_info
from servebench.models.serving_info import FILES, SERVING_FILE, labels, max_sequence_length
from servekit import inference

pytestmark = pytest.mark.unit

BERT_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


@pytest.mark.parametrize(
    ("positions", "declared", "expected"),
    [
        (512, 512, 512),
        (512, 128, 128),
        (256, 512, 256),
        (514, 10**30, 514),  # transformers' "no limit" sentinel, an integer in JSON
        (512, 1e30, 512),  # ... or a float
        (None, None, 512),  # neither says: BERT's 512
        (128, None, 128),
        (128, 0, 128),
    ],
)
def test_max_length_is_the_smaller_limit(positions: Any, declared: Any, expected: int) -> None:
    config = {} if positions is None else {"max_position_embeddings": positions}
    assert max_sequence_length(config, {"model_max_length": declared}) == expected


@pytest.mark.parametrize(
    ("config", "tokenizer_config"),
    [({"max_position_embeddings": "x"}, {}), ({}, {"model_max_length": -3})],
)
def test_max_length_refuses_nonsense(config: Any, tokenizer_config: Any) -> None:
    with pytest.raises(ValueError):
        max_sequence_length(config, tokenizer_config)


def test_labels_are_listed_in_id_order() -> None:
    assert labels({"id2label": {"1": "POSITIVE", "0": "NEGATIVE"}}) == ["NEGATIVE", "POSITIVE"]
    for bad in [{}, {"0": "A", "2": "C"}, {"x": "A"}, {"0": 3}, {"0": ""}]:
        with pytest.raises(ValueError, match="id2label"):
            labels({"id2label": bad} if bad else {})


def test_the_graph_must_have_logits() -> None:
    config = {"id2label": {"0": "NEGATIVE"}}
    with pytest.raises(ValueError, match="no 'logits' output"):
        serving_info.serving_info(config, {}, BERT_INPUTS, ["last_hidden_state"])


def exported(tmp_path: Path, inputs: list[str] = BERT_INPUTS) -> Path:
    """A directory as the exporter leaves it, with empty stand-ins for the big files."""
    for name in FILES.values():
        (tmp_path / name).write_text("{}")
    config = {"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "max_position_embeddings": 512}
    (tmp_path / FILES["config"]).write_text(json.dumps(config))
    (tmp_path / FILES["tokenizer_config"]).write_text('{"model_max_length": 128}')
    serving_info.write_serving_info(tmp_path, inputs, ["logits"])
    return tmp_path


def test_the_services_read_what_the_exporter_wrote(tmp_path: Path) -> None:
    directory = exported(tmp_path, ["input_ids", "attention_mask"])
    info = inference.ServingInfo.read(directory)
    assert info.labels == ("NEGATIVE", "POSITIVE")
    assert info.max_length == 128
    assert info.inputs == ("input_ids", "attention_mask")
    assert info.output == "logits"
    assert info.files == FILES
    assert serving_info.is_complete(directory)


def read_error(directory: Path) -> str:
    with pytest.raises(inference.ModelDirError) as info:
        inference.ServingInfo.read(directory)
    assert not serving_info.is_complete(directory)
    return str(info.value)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    message = read_error(tmp_path / "nowhere")
    assert f"{tmp_path / 'nowhere'} does not exist" in message and "make model" in message


def test_missing_serving_info_is_named(tmp_path: Path) -> None:
    directory = exported(tmp_path)
    (directory / SERVING_FILE).unlink()
    message = read_error(directory)
    assert message.startswith(f"model directory {directory} has no {SERVING_FILE}; ")
    assert "make model" in message


def test_missing_listed_file_is_named(tmp_path: Path) -> None:
    directory = exported(tmp_path)
    (directory / FILES["tokenizer"]).unlink()
    message = read_error(directory)
    assert message.startswith(f"model directory {directory} lacks {FILES['tokenizer']} ")
    assert "make model" in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "Expecting value"),
        ("{", "Expecting property name"),
        ("[]", "not a JSON object"),
        ('{"labels": []}', "'labels'"),
        ("MAX_LENGTH_ZERO", "'max_length'"),
        ("NO_ONNX", "no 'onnx'"),
    ],
)
def test_corrupt_serving_info_is_named(tmp_path: Path, content: str, reason: str) -> None:
    directory = exported(tmp_path)
    good = json.loads((directory / SERVING_FILE).read_text())
    variants = {
        "MAX_LENGTH_ZERO": {**good, "max_length": 0},
        "NO_ONNX": {**good, "files": {"tokenizer": FILES["tokenizer"]}},
    }
    if content in variants:
        content = json.dumps(variants[content])
    (directory / SERVING_FILE).write_text(content)
    message = read_error(directory)
    assert message.startswith(f"{directory / SERVING_FILE} is not valid: "), message
    assert reason in message and "make model" in message, message
