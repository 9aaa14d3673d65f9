"""servebench.models: built-in sources, ONNX export, parity, and the served predictions.

Real models, no mocks. The built-in models are cached in data/models/.cache (the first
`minilm-sentiment` build trains for a minute or two); the exports here go to temporary
directories so the shared data/models/<model> directories are never touched. The parts
that need no training or export are in tests/test_service_model_sources.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from servebench.models import (
    DEFAULT_CACHE_DIR,
    DISTILBERT_SHAPE,
    MINILM_SENTIMENT,
    REFERENCE_SENTENCES,
    SEED_SENTENCE,
    ParityError,
    builtin,
    check_parity,
    export_model,
    prepare_source,
)
from servebench.models.export import EXPORT_FILE, existing_export
from servebench.models.parity import PARITY_FILE
from servebench.models.serving_info import FILES, SERVING_FILE
from servekit.inference import Classifier

pytestmark = pytest.mark.system


NEGATIVE_SENTENCE = "This is terrible. I hate it, and the staff were rude and useless."


@pytest.fixture(scope="module")
def minilm_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "minilm-sentiment"
    export_model(MINILM_SENTIMENT, out, opset=17, cache_dir=DEFAULT_CACHE_DIR)
    return out


def test_builtin_minilm_is_cached_and_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.perf_counter()
    source = Path(prepare_source(MINILM_SENTIMENT, DEFAULT_CACHE_DIR))
    assert source.parent == DEFAULT_CACHE_DIR
    assert builtin.recipe_key(MINILM_SENTIMENT) in source.name
    again = time.perf_counter()

    def train_again(target: Path) -> dict:
        raise AssertionError("second call must come from the cache, not train again")

    monkeypatch.setattr(builtin, "_train_minilm_sentiment", train_again)
    assert prepare_source(MINILM_SENTIMENT, DEFAULT_CACHE_DIR) == source
    config = json.loads((source / "config.json").read_text())
    assert config["id2label"] == {"0": "NEGATIVE", "1": "POSITIVE"}
    info = builtin.source_info(source)
    assert info["held_out_accuracy"] >= 0.85, info
    assert info["data"]["held_out_sentences"] >= 50
    print(f"minilm-sentiment ready in {again - started:.1f} s: {info['held_out_accuracy']:.1%}")


def test_minilm_export_satisfies_contract(minilm_export: Path) -> None:
    record = json.loads((minilm_export / EXPORT_FILE).read_text())
    assert record["model_id"] == MINILM_SENTIMENT
    assert record["opset"] == 17
    assert record["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert record["outputs"] == ["logits"]
    assert record["training"]["held_out_accuracy"] >= 0.85
    assert 20e6 < record["parameters"] < 25e6
    assert json.loads((minilm_export / SERVING_FILE).read_text()) == {
        "labels": ["NEGATIVE", "POSITIVE"],
        "max_length": 512,
        "inputs": record["inputs"],
        "output": "logits",
        "files": FILES,
    }
    for name in FILES.values():
        assert (minilm_export / name).is_file(), name
    tokenizer_json = json.loads((minilm_export / "tokenizer.json").read_text())
    assert tokenizer_json["truncation"] is None and tokenizer_json["padding"] is None


def test_export_is_idempotent(minilm_export: Path) -> None:
    before = {f.name: f.stat().st_mtime_ns for f in minilm_export.iterdir()}
    again = export_model(MINILM_SENTIMENT, minilm_export, opset=17, cache_dir=DEFAULT_CACHE_DIR)
    assert again.skipped
    assert {f.name: f.stat().st_mtime_ns for f in minilm_export.iterdir()} == before


def test_minilm_parity(minilm_export: Path) -> None:
    source = prepare_source(MINILM_SENTIMENT, DEFAULT_CACHE_DIR)
    result = check_parity(source, minilm_export)
    assert result.passed and result.max_abs_diff <= 1e-4
    frame = result.to_frame()
    assert len(frame) == len(REFERENCE_SENTENCES)
    assert frame.loc[frame["kind"] == "truncated", "tokens"].eq(512).all()
    saved = json.loads((minilm_export / PARITY_FILE).read_text())
    assert saved["passed"] and len(saved["rows"]) == len(REFERENCE_SENTENCES)


def test_parity_failure_is_an_error_not_an_assertion(minilm_export: Path) -> None:
    source = prepare_source(MINILM_SENTIMENT, DEFAULT_CACHE_DIR)
    with pytest.raises(ParityError, match="disagree") as info:
        check_parity(source, minilm_export, REFERENCE_SENTENCES[:1], tolerance=-1.0)
    assert isinstance(info.value, RuntimeError) and not isinstance(info.value, AssertionError)


def test_served_predictions(minilm_export: Path) -> None:
    classifier = Classifier(minilm_export, threads=1)
    assert classifier.classify(SEED_SENTENCE).label == "POSITIVE"
    assert classifier.classify(NEGATIVE_SENTENCE).label == "NEGATIVE"
    long_text = next(s.text for s in REFERENCE_SENTENCES if s.kind == "truncated")
    assert classifier.encode(long_text)["input_ids"].shape == (1, 512)


def test_stale_export_without_serving_info_is_redone(minilm_export: Path, tmp_path: Path) -> None:
    """An export of an older layout (no serving.json) is not taken for a finished one."""
    stale = tmp_path / "stale"
    stale.mkdir()
    for name in (EXPORT_FILE, *FILES.values()):
        (stale / name).symlink_to(minilm_export / name)
    record = json.loads((stale / EXPORT_FILE).read_text())
    assert not existing_export(stale, record["fingerprint"])
    (stale / SERVING_FILE).symlink_to(minilm_export / SERVING_FILE)
    assert existing_export(stale, record["fingerprint"])


def test_distilbert_shape_export(tmp_path: Path) -> None:
    out = tmp_path / "distilbert-shape"
    result = export_model(DISTILBERT_SHAPE, out, opset=17, cache_dir=DEFAULT_CACHE_DIR)
    assert 66e6 < result.parameters < 68e6
    assert result.inputs == ["input_ids", "attention_mask"]
    assert json.loads((out / SERVING_FILE).read_text())["inputs"] == result.inputs
    assert result.note and "meaningless" in result.note
    assert json.loads((out / EXPORT_FILE).read_text())["note"] == result.note
    parity = check_parity(result.source, out)
    assert parity.passed
    assert Classifier(out).classify(SEED_SENTENCE).label in {"NEGATIVE", "POSITIVE"}


def test_local_directory_export(tmp_path: Path) -> None:
    local = Path(prepare_source(MINILM_SENTIMENT, DEFAULT_CACHE_DIR))
    out = tmp_path / "local"
    result = export_model(str(local), out, opset=17, cache_dir=DEFAULT_CACHE_DIR)
    assert result.source_kind == "local" and result.source == str(local)
    assert result.fingerprint["recipe"]  # local directories are fingerprinted by their files
    assert Classifier(out).classify(SEED_SENTENCE).label == "POSITIVE"
    assert export_model(str(local), out, opset=17).skipped
