"""Verification before timing: every service must answer like ONNX Runtime called directly.

A service that disagrees on any reference sentence (short, long, truncated) is never timed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from servebench import service_code
from servebench.client import Client
from servebench.models.reference import TOLERANCE
from servebench.process import ServiceError, ServiceProcess


class VerificationError(ServiceError):
    """A service answered differently from ONNX Runtime called directly."""


def reference_sentences() -> list[dict[str, str]]:
    """The sentences every service must answer like ONNX Runtime before it is timed."""
    from servebench.models.reference import REFERENCE_SENTENCES

    return [dict(row) for row in REFERENCE_SENTENCES]


def expected_predictions(model_dir: Path, sentences: list[dict[str, str]]) -> dict[str, Any]:
    """Direct ONNX Runtime in this process: the answers every service must give."""
    classifier = service_code.python_inference().Classifier(model_dir, threads=1)
    return {row["id"]: classifier.classify(row["text"]) for row in sentences}


def verify(
    proc: ServiceProcess, sentences: list[dict[str, str]], expected: dict[str, Any]
) -> list[dict[str, Any]]:
    """Parity rows for one service process; raises VerificationError on any mismatch."""
    rows = []
    with Client(proc.host, proc.port) as client:
        for row in sentences:
            answer = client.classify(row["text"])
            want = expected[row["id"]]
            ok_status = answer.status == 200 and isinstance(answer.body, dict)
            label = answer.body.get("label") if ok_status else None
            score = float(answer.body.get("score", float("nan"))) if ok_status else float("nan")
            diff = abs(score - want.score)
            rows.append(
                {
                    "sentence_id": row["id"],
                    "kind": row["kind"],
                    "label": label,
                    "score": score,
                    "expected_label": want.label,
                    "expected_score": want.score,
                    "abs_diff": diff,
                    "ok": bool(label == want.label and diff <= TOLERANCE),
                }
            )
    bad = [r for r in rows if not r["ok"]]
    if bad:
        first = bad[0]
        raise VerificationError(
            f"{proc.service.name} disagrees with ONNX Runtime on {len(bad)} reference "
            f"sentence(s), e.g. {first['sentence_id']}: {first['label']} {first['score']:.6f} "
            f"vs {first['expected_label']} {first['expected_score']:.6f}"
        )
    return rows


def first_correct_answer(proc: ServiceProcess, text: str, want: Any) -> float:
    """Seconds from spawn to the first correct classification (the cold start)."""
    with Client(proc.host, proc.port) as client:
        answer = client.classify(text)
    if answer.status != 200 or answer.body.get("label") != want.label:
        raise VerificationError(
            f"{proc.service.name} first answer was {answer.status} {answer.body}"
        )
    return time.perf_counter() - proc.spawned_at
