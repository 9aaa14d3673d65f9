"""flops.csv: the model's arithmetic per request, for each variant and each payload of the run.

Counted from each variant's own ONNX graph (models/flops.py) at the payload's token count as
the model's tokenizer makes it (measure/workload.py ``payload_tokens``): the seed sentence,
the other payloads, and the mixed workload's mean over its requests. The export notebook
writes it beside variants.csv; the report divides achieved rates by the core's peak with it
(analysis/peak_share.py).

A transformer's count is exactly ``a + b·t + c·t²`` in the tokens t (projections grow with t,
attention's two products with t², the pooler and classifier not at all), so each variant's
graph is counted at three lengths and the rest follows from the polynomial; a fourth count
checks it, so a graph that is not of this form is counted at every length instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from servebench.models import flops

#: The lengths the polynomial is fitted on and checked at.
FIT_TOKENS = (8, 64, 256)
CHECK_TOKENS = 128
PARTS = ("fp32", "int8", "attention")


class Counter:
    """One variant's count per token length: three graph counts, then the polynomial."""

    def __init__(self, model: Path) -> None:
        self.model = model
        counted = [flops.count(model, t) for t in FIT_TOKENS]
        design = np.array([[1.0, t, t * t] for t in FIT_TOKENS])
        self.coefficients = {
            part: np.linalg.solve(design, [float(getattr(c, part)) for c in counted])
            for part in PARTS
        }
        check = flops.count(model, CHECK_TOKENS)
        self.every_length = any(
            round(self._fitted(part, CHECK_TOKENS)) != getattr(check, part) for part in PARTS
        )

    def _fitted(self, part: str, tokens: int) -> float:
        a, b, c = self.coefficients[part]
        return float(a + b * tokens + c * tokens * tokens)

    def parts(self, tokens: int) -> dict[str, float]:
        """fp32, int8 and attention operations of one request of ``tokens`` tokens."""
        if self.every_length:
            counted = flops.count(self.model, tokens)
            return {part: float(getattr(counted, part)) for part in PARTS}
        return {part: round(self._fitted(part, tokens)) for part in PARTS}


def row(variant: str, payload: str, tokens: Iterable[int], counter: Counter) -> dict[str, Any]:
    """One flops.csv row: the mean over the requests' token counts (one for a fixed payload)."""
    lengths = list(tokens)
    parts = [counter.parts(t) for t in lengths]
    mean = {part: sum(p[part] for p in parts) / len(parts) for part in PARTS}
    return {
        "variant": variant,
        "payload": payload,
        "tokens": sum(lengths) / len(lengths),
        "flop": mean["fp32"] + mean["int8"],
        "float_flop": mean["fp32"],
        "integer_op": mean["int8"],
        "attention_flop": mean["attention"],
    }


def flops_rows(
    model_dirs: dict[str, Path], payload_tokens: dict[str, list[int]]
) -> list[dict[str, Any]]:
    """flops.csv: every variant × payload (``payload_tokens``: each payload's requests'
    token counts, one for a fixed text)."""
    rows = []
    for variant, model_dir in model_dirs.items():
        counter = Counter(model_dir / "model.onnx")
        rows += [row(variant, p, tokens, counter) for p, tokens in payload_tokens.items()]
    return rows
