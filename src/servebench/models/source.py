"""Resolve a model id to something `from_pretrained` and the optimum exporter can load."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
from huggingface_hub.errors import RepositoryNotFoundError
from transformers import AutoConfig

from servebench import paths
from servebench.models import builtin

DEFAULT_CACHE_DIR = paths.MODELS / ".cache"
HUB_TIMEOUT_S = 10.0


class HubUnreachableError(RuntimeError):
    """A Hugging Face hub id was asked for, but the hub cannot be reached."""


def source_kind(model_id: str) -> str:
    """'builtin', 'local' (an existing directory) or 'hub'."""
    if builtin.is_builtin(model_id):
        return "builtin"
    if Path(model_id).expanduser().is_dir():
        return "local"
    return "hub"


def prepare_source(model_id: str, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path | str:
    """What to load `model_id` from.

    * `minilm-sentiment` / `distilbert-shape`: built offline into `cache_dir` (cached);
    * an existing local directory: used as is;
    * anything else: a Hugging Face hub id, returned unchanged once the hub (or the local
      Hugging Face cache) is known to have it. Raises HubUnreachableError otherwise.
    """
    kind = source_kind(model_id)
    if kind == "builtin":
        return builtin.prepare_builtin(model_id, Path(cache_dir))
    if kind == "local":
        return Path(model_id).expanduser().resolve()
    _check_hub(model_id)
    return model_id


def _hub_help(model_id: str, reason: str) -> str:
    return (
        f"cannot load model {model_id!r} from the Hugging Face hub: {reason}. "
        "This machine has no model hub access. Use a built-in offline model instead "
        f"(model_id={builtin.MINILM_SENTIMENT!r}: MiniLM fine-tuned for sentiment here, "
        f"or model_id={builtin.DISTILBERT_SHAPE!r}: random-weight DistilBERT with the seed "
        "model's shape and latency), or pass the path of a local directory holding a "
        "transformers sequence-classification model (config.json, weights, tokenizer files)."
    )


def _check_hub(model_id: str) -> None:
    try:  # already in the local Hugging Face cache: fine without a network
        AutoConfig.from_pretrained(model_id, local_files_only=True)
        return
    except OSError:
        pass
    try:
        huggingface_hub.model_info(model_id, timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError as error:
        raise HubUnreachableError(_hub_help(model_id, "no such model on the hub")) from error
    except Exception as error:  # offline mode, DNS failure, timeout, proxy refusal...
        reason = f"the hub is unreachable ({type(error).__name__})"
        raise HubUnreachableError(_hub_help(model_id, reason)) from error
