"""The services' own request-path code (service/python/inference.py), imported by the harness.

The harness checks and measures with the very code the Python and PyO3 services run, so
the tokenization rule, max length and softmax exist once.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from servebench import paths


def inference() -> ModuleType:
    folder = str(paths.SERVICE / "python")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("inference")
