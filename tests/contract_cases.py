"""The contract's malformed-request cases (service/contract_cases.json), for the tests of
every service: the Python routes in process (test_service_contract_cases.py,
test_python_batching.py) and every service as a process (test_contract.py). The Rust kit reads
the same file (service/rust/servekit/src/contract_cases.rs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from servebench import paths

CONTRACT_CASES = paths.SERVICE / "contract_cases.json"


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
