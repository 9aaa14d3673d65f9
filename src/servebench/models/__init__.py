"""Model preparation: built-in offline models, ONNX export, PyTorch/ONNX parity, and the
variants made from the export with optimum (optimized, int8) with their faithfulness to fp32.

Names are imported on first use (PEP 562): the measuring process imports
`servebench.models.reference` and `serving_info` without paying for torch and optimum,
which only the export and the parity check need.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DEFAULT_MODEL_ID": "builtin",
    "DISTILBERT_SHAPE": "builtin",
    "MINILM_SENTIMENT": "builtin",
    "DEFAULT_OPSET": "export",
    "ExportResult": "export",
    "export_model": "export",
    "Faithfulness": "faithfulness",
    "check_agreement": "faithfulness",
    "measure_faithfulness": "faithfulness",
    "variants_frame": "faithfulness",
    "CpuIsa": "isa",
    "detect_isa": "isa",
    "ParityError": "parity",
    "ParityResult": "parity",
    "check_parity": "parity",
    "REFERENCE_SENTENCES": "reference",
    "SEED_SENTENCE": "reference",
    "ReferenceSentence": "reference",
    "DEFAULT_CACHE_DIR": "source",
    "HubUnreachableError": "source",
    "prepare_source": "source",
    "VariantError": "variants",
    "VariantResult": "variants",
    "export_variants": "variant_build",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
