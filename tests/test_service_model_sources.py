"""servebench.models without training or exporting: source kinds, the sentiment data, the
reference sentences and the hub's clear failure (tests/test_models.py exports and trains)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from servebench.models import (
    DEFAULT_CACHE_DIR,
    DISTILBERT_SHAPE,
    MINILM_SENTIMENT,
    REFERENCE_SENTENCES,
    SEED_SENTENCE,
    HubUnreachableError,
    builtin,
    prepare_source,
    sentiment_data,
)
from servebench.models.source import source_kind

pytestmark = pytest.mark.system  # a real tokenizer, and the hub tried over the network


def test_source_kinds(tmp_path: Path) -> None:
    assert source_kind(MINILM_SENTIMENT) == "builtin"
    assert source_kind(DISTILBERT_SHAPE) == "builtin"
    assert source_kind(str(tmp_path)) == "local"
    assert source_kind("distilbert-base-uncased-finetuned-sst-2-english") == "hub"
    assert prepare_source(str(tmp_path), DEFAULT_CACHE_DIR) == tmp_path.resolve()


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
