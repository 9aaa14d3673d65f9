"""servebench.models: built-in sources, ONNX export, parity, and the served predictions.

Real models, no mocks. The built-in models are cached in data/models/.cache (the first
`minilm-sentiment` build trains for a minute or two); the exports here go to temporary
directories so the shared data/models/<model> directories are never touched.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from servebench import paths
from servebench.models import (
    DEFAULT_CACHE_DIR,
    DISTILBERT_SHAPE,
    MINILM_SENTIMENT,
    REFERENCE_SENTENCES,
    SEED_SENTENCE,
    HubUnreachableError,
    builtin,
    check_parity,
    export_model,
    prepare_source,
    sentiment_data,
)
from servebench.models.export import EXPORT_FILE, REQUIRED_FILES
from servebench.models.parity import PARITY_FILE
from servebench.models.source import source_kind

sys.path.insert(0, str(paths.SERVICE / "python"))
from inference import Classifier, max_sequence_length

NEGATIVE_SENTENCE = "This is terrible. I hate it, and the staff were rude and useless."


@pytest.fixture(scope="module")
def minilm_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "minilm-sentiment"
    export_model(MINILM_SENTIMENT, out, opset=17, cache_dir=DEFAULT_CACHE_DIR)
    return out


def test_source_kinds(tmp_path: Path) -> None:
    assert source_kind(MINILM_SENTIMENT) == "builtin"
    assert source_kind(DISTILBERT_SHAPE) == "builtin"
    assert source_kind(str(tmp_path)) == "local"
    assert source_kind("distilbert-base-uncased-finetuned-sst-2-english") == "hub"
    assert prepare_source(str(tmp_path), DEFAULT_CACHE_DIR) == tmp_path.resolve()


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


def test_sentiment_data() -> None:
    sentences = sentiment_data.load_sentences()
    assert len(sentences) >= 300
    labels = {e.label for e in sentences}
    assert labels == {0, 1}
    seed = [e for e in sentences if e.text == SEED_SENTENCE]
    assert seed and seed[0].label == 1
    train, held_out = sentiment_data.split_sentences(sentences)
    assert not {e.text for e in train} & {e.text for e in held_out}
    assert len(sentiment_data.load_lexicon(1.5)) > 1000


def test_reference_sentences() -> None:
    assert len(REFERENCE_SENTENCES) >= 20
    assert len({s.id for s in REFERENCE_SENTENCES}) == len(REFERENCE_SENTENCES)
    assert {s.kind for s in REFERENCE_SENTENCES} == {"short", "long", "truncated"}
    assert dict(REFERENCE_SENTENCES[0]) == {
        "id": "short-01",
        "kind": "short",
        "text": SEED_SENTENCE,
    }
    tokenizer = AutoTokenizer.from_pretrained(str(builtin.GT_MODEL_DIR))
    for sentence in REFERENCE_SENTENCES:
        tokens = len(tokenizer(sentence.text, verbose=False)["input_ids"])
        assert (tokens > 512) == (sentence.kind == "truncated"), (sentence.id, tokens)


def test_minilm_export_satisfies_contract(minilm_export: Path) -> None:
    for name in REQUIRED_FILES:
        assert (minilm_export / name).is_file(), name
    record = json.loads((minilm_export / EXPORT_FILE).read_text())
    assert record["model_id"] == MINILM_SENTIMENT
    assert record["opset"] == 17
    assert record["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert record["outputs"] == ["logits"]
    assert record["training"]["held_out_accuracy"] >= 0.85
    assert 20e6 < record["parameters"] < 25e6
    assert max_sequence_length(minilm_export) == 512
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


def test_served_predictions(minilm_export: Path) -> None:
    classifier = Classifier(minilm_export, threads=1)
    assert classifier.classify(SEED_SENTENCE).label == "POSITIVE"
    assert classifier.classify(NEGATIVE_SENTENCE).label == "NEGATIVE"
    long_text = next(s.text for s in REFERENCE_SENTENCES if s.kind == "truncated")
    assert classifier.encode(long_text)["input_ids"].shape == (1, 512)


def test_hub_id_fails_clearly_and_quickly() -> None:
    started = time.perf_counter()
    try:
        source = prepare_source(
            "distilbert-base-uncased-finetuned-sst-2-english", DEFAULT_CACHE_DIR
        )
    except HubUnreachableError as error:
        message = str(error)
        assert "unreachable" in message
        assert MINILM_SENTIMENT in message and "local directory" in message
    else:
        pytest.skip(f"the Hugging Face hub (or its local cache) is reachable here: {source}")
    assert time.perf_counter() - started < 60  # a clear error, not a long hang


@pytest.mark.slow
def test_distilbert_shape_export(tmp_path: Path) -> None:
    out = tmp_path / "distilbert-shape"
    result = export_model(DISTILBERT_SHAPE, out, opset=17, cache_dir=DEFAULT_CACHE_DIR)
    assert 66e6 < result.parameters < 68e6
    assert result.inputs == ["input_ids", "attention_mask"]
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
