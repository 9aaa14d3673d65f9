"""The services' own request-path code (service/python/inference.py), imported by the harness.

The harness checks and measures with the very code the Python and PyO3 services run, so
the tokenization rule, max length and softmax exist once. The contract's malformed-request
cases (service/contract_cases.json) are read here too, for the tests of every service.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from servebench import paths

CONTRACT_CASES = paths.SERVICE / "contract_cases.json"


def python_inference() -> ModuleType:
    """service/python/inference.py as a module (imported once, cached by Python)."""
    folder = str(paths.SERVICE / "python")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("inference")


@dataclass(frozen=True)
class ContractCase:
    """One malformed request and the contract's answer: `status`, a message starting `error`."""

    id: str
    method: str
    path: str
    content_type: str | None
    body: bytes | None
    status: int
    error: str

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.content_type is None else {"Content-Type": self.content_type}


def case_body(spec: Any) -> bytes | None:
    """A body as the file writes it: null, a string, or parts (string, hex bytes, repeat)."""
    if spec is None:
        return None
    body = bytearray()
    for part in [spec] if isinstance(spec, str) else spec:
        if isinstance(part, str):
            body += part.encode()
        elif set(part) == {"hex"}:
            body += bytes.fromhex(part["hex"])
        elif set(part) == {"repeat", "times"}:
            body += part["repeat"].encode() * part["times"]
        else:
            raise ValueError(f"{CONTRACT_CASES}: unknown body part {part!r}")
    return bytes(body)


def contract_cases() -> list[ContractCase]:
    """Every case of service/contract_cases.json, in file order."""
    cases = json.loads(CONTRACT_CASES.read_text())["cases"]
    return [ContractCase(**{**case, "body": case_body(case["body"])}) for case in cases]
