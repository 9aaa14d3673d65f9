"""A model of another architecture, made here offline: RoBERTa-style (byte-level BPE tokenizer
trained in process by `tokenizers`, no token_type_ids, positions offset by the padding index),
random weights, in a local directory. Its fp32 export and variants must serve like the BERT
ones. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

from servebench.models import REFERENCE_SENTENCES
from servebench.models import sentiment_data as sd
from servebench.models.faithfulness import measure_faithfulness
from servebench.models.isa import detect_isa
from servebench.models.serving_info import SERVING_FILE
from servebench.models.variant_build import export_variants
from servekit.inference import Classifier

pytestmark = pytest.mark.system

MAX_LENGTH = 128
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build_roberta(target: Path, seed: int = 0) -> Path:
    """A tiny RoBERTa classifier (2 layers, width 64) with a BPE vocabulary learnt from the
    project's sentiment sentences, saved with save_pretrained like any local model."""
    target.mkdir(parents=True)
    bpe = ByteLevelBPETokenizer()
    texts = [e.text for e in sd.load_sentences()]
    bpe.train_from_iterator(texts, vocab_size=600, special_tokens=SPECIAL, show_progress=False)
    bpe.save_model(str(target))
    tokenizer = RobertaTokenizerFast(
        vocab_file=str(target / "vocab.json"),
        merges_file=str(target / "merges.txt"),
        model_max_length=MAX_LENGTH,
    )
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=MAX_LENGTH + 2,  # RoBERTa counts positions from pad + 1
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        id2label=dict(enumerate(sd.LABELS)),
        label2id={label: i for i, label in enumerate(sd.LABELS)},
    )
    RobertaForSequenceClassification(config).eval().save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.mark.skipif(detect_isa().isa is None, reason="no int8 preset for this CPU")
def test_roberta_style_local_model(tmp_path: Path) -> None:
    source = build_roberta(tmp_path / "roberta-local")
    made = export_variants(str(source), ["optimized", "int8"], output_dir=tmp_path / "roberta")
    assert list(made) == ["fp32", "optimized", "int8"]
    assert made["fp32"].fingerprint["recipe"]  # a local directory: fingerprinted by its files
    long_text = next(s.text for s in REFERENCE_SENTENCES if s.kind == "truncated")
    for name, result in made.items():
        assert result.inputs == ["input_ids", "attention_mask"], name
        serving = json.loads((Path(result.output_dir) / SERVING_FILE).read_text())
        assert serving["max_length"] == MAX_LENGTH and serving["inputs"] == result.inputs
        classifier = Classifier(result.output_dir, threads=1)
        assert classifier.encode(long_text)["input_ids"].shape == (1, MAX_LENGTH)
        assert classifier.classify(long_text).label in sd.LABELS
    faithful = measure_faithfulness(made)
    assert faithful["optimized"].label_agreement >= 0.99  # the same math, whatever the weights
    # Random weights: int8's agreement is only reported, on every sentence outside static
    # int8's calibration split.
    _, evaluation = sd.calibration_split(sd.load_sentences())
    assert faithful["int8"].sentences == len(evaluation) > 100
