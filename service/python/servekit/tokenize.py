"""The two tokenizer front ends a Classifier can call, behind one interface (`Tokenize`).

Both run the same Rust tokenizer from the model's `tokenizer.json`, configured alike
(truncation to `max_length`, longest first, right side; no padding; special tokens added), so
their ids are the same; what differs is the Python layer around it:

* `transformers` (`TransformersTokenizer`): `AutoTokenizer`, the seed's; its wrapper builds a
  `BatchEncoding` and converts it to arrays on every call, and importing transformers costs
  seconds and hundreds of MB.
* `tokenizers` (`DirectTokenizer`): the `tokenizers` binding called directly, as the native
  Rust service calls the crate (service/rust/rust-native/src/tokenize.rs); transformers is
  never imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: The front ends by name (a service's `--tokenizer` flag).
TOKENIZER_APIS = ("transformers", "tokenizers")
#: Pad token spellings looked up when `tokenizer.json` has no padding parameters (as the native
#: service does): BERT-like, SentencePiece/T5-like, GPT-like.
PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>")


class Tokenize(Protocol):
    """What inference needs from a tokenizer front end."""

    #: The id padded positions get (they are masked out: any id would do, this one matches
    #: the other implementations' padding).
    pad_token_id: int

    def encode(self, text: str, inputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        """One text as the model's `inputs`, int64 arrays of shape (1, tokens)."""
        ...

    def encode_rows(self, texts: list[str], inputs: tuple[str, ...]) -> dict[str, list[list[int]]]:
        """Many texts in one call, unpadded: per input, one list of ids per text."""
        ...


class TransformersTokenizer:
    """`AutoTokenizer(use_fast=True)` of the model directory, called as the seed calls it."""

    def __init__(self, model_dir: Path, max_length: int) -> None:
        # Imported here: transformers costs seconds to import, and only this front end needs it.
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        self.max_length = max_length
        pad = self.tokenizer.pad_token_id
        self.pad_token_id: int = pad if isinstance(pad, int) else 0

    def encode(self, text: str, inputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer(
            text, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        return {name: encoded[name].astype(np.int64) for name in inputs}

    def encode_rows(self, texts: list[str], inputs: tuple[str, ...]) -> dict[str, list[list[int]]]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        return {name: encoded[name] for name in inputs}


#: A `tokenizers.Encoding`'s field for each model input name.
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


class DirectTokenizer:
    """`tokenizer.json` through the `tokenizers` binding, its truncation and padding replaced
    as the native service replaces them."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer: Any = Tokenizer.from_file(str(path))
        padding = self.tokenizer.padding  # read before it is cleared
        found = (self.tokenizer.token_to_id(token) for token in PAD_TOKENS)
        pad = padding["pad_id"] if padding else next((i for i in found if i is not None), 0)
        self.pad_token_id = int(pad)
        self.tokenizer.enable_truncation(
            max_length, stride=0, strategy="longest_first", direction="right"
        )
        self.tokenizer.no_padding()

    def encode(self, text: str, inputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        encoding = self.tokenizer.encode(text)
        return {
            name: np.array([getattr(encoding, ENCODING_FIELDS[name])], dtype=np.int64)
            for name in inputs
        }

    def encode_rows(self, texts: list[str], inputs: tuple[str, ...]) -> dict[str, list[list[int]]]:
        encodings = self.tokenizer.encode_batch(texts)
        return {
            name: [getattr(encoding, ENCODING_FIELDS[name]) for encoding in encodings]
            for name in inputs
        }


def front_end(
    api: str, model_dir: Path, files: dict[str, str], inputs: tuple[str, ...], max_length: int
) -> Tokenize:
    """The front end named `api` for the model in `model_dir` (`files`, `inputs`: its
    serving.json's). ValueError for an unknown name, or a model `tokenizers` cannot feed."""
    if api == "transformers":
        return TransformersTokenizer(model_dir, max_length)
    if api != "tokenizers":
        raise ValueError(f"unknown tokenizer {api!r}: one of {', '.join(TOKENIZER_APIS)}")
    if "tokenizer" not in files:
        raise ValueError("the tokenizers front end needs serving.json to list a 'tokenizer' file")
    unknown = [name for name in inputs if name not in ENCODING_FIELDS]
    if unknown:
        raise ValueError(f"the tokenizers front end cannot make the input(s) {', '.join(unknown)}")
    return DirectTokenizer(model_dir / files["tokenizer"], max_length)
