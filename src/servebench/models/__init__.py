"""Model preparation: built-in offline models, ONNX export and PyTorch/ONNX parity."""

from servebench.models.builtin import DEFAULT_MODEL_ID, DISTILBERT_SHAPE, MINILM_SENTIMENT
from servebench.models.export import DEFAULT_OPSET, ExportResult, export_model
from servebench.models.parity import ParityError, ParityResult, check_parity
from servebench.models.reference import REFERENCE_SENTENCES, SEED_SENTENCE, ReferenceSentence
from servebench.models.source import DEFAULT_CACHE_DIR, HubUnreachableError, prepare_source

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_MODEL_ID",
    "DEFAULT_OPSET",
    "DISTILBERT_SHAPE",
    "MINILM_SENTIMENT",
    "REFERENCE_SENTENCES",
    "SEED_SENTENCE",
    "ExportResult",
    "HubUnreachableError",
    "ParityError",
    "ParityResult",
    "ReferenceSentence",
    "check_parity",
    "export_model",
    "prepare_source",
]
