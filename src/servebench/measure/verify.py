"""Verification before timing: every service must answer like ONNX Runtime called directly.

A service that disagrees on any reference sentence (short, long, truncated) is never timed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from servebench.client import Client
from servebench.models.reference import TOLERANCE
from servebench.process import ServiceError, ServiceProcess
from servebench.rundir.facts import truth


class VerificationError(ServiceError):
    """A service answered differently from ONNX Runtime called directly."""


def reference_sentences() -> list[dict[str, str]]:
    """The sentences every service must answer like ONNX Runtime before it is timed."""
    from servebench.models.reference import REFERENCE_SENTENCES

    return [dict(row) for row in REFERENCE_SENTENCES]


def expected_predictions(model_dir: Path, sentences: list[dict[str, str]]) -> dict[str, Any]:
    """Direct ONNX Runtime in this process: the answers every service must give."""
    from servekit.inference import Classifier

    classifier = Classifier(model_dir, threads=1)
    return {row["id"]: classifier.classify(row["text"]) for row in sentences}


# Dynamic int8 quantization (ONNX Runtime's DynamicQuantizeLinear) takes one scale per
# activation tensor, i.e. over every row of a batch, padding included: a row's answer then
# depends on its batch-mates (scores moved by up to 0.3 and ~1 % of labels flipped on mixed
# batches here). Notebook 01 measures every variant's batch invariance in process
# (`faithfulness.batch_invariance`, variants.csv); only for a variant measured as *not*
# invariant does a batched service's concurrent check record the labels instead of stopping
# the run (the report says so). Every invariant variant (fp32, static int8) is held to 1e-4.
def tolerance(check: str, batch_invariant: bool = True) -> float | None:
    """The score tolerance of a check; None: labels compared and recorded, never fatal."""
    return None if check == "concurrent" and not batch_invariant else TOLERANCE


def batch_invariance(run_dir: Path, model_dirs: dict[str, Path]) -> dict[str, bool]:
    """Each variant's batch invariance: notebook 01's measurement in the run's variants.csv,
    or measured now where the run has none (a load test started on its own)."""
    recorded: dict[str, bool] = {}
    if (run_dir / "variants.csv").is_file():
        import pandas as pd

        frame = pd.read_csv(run_dir / "variants.csv")
        if "batch_invariant" in frame:
            pairs = zip(frame["variant"].astype(str), frame["batch_invariant"], strict=True)
            # A blank (not measured) is measured below, never read as invariant.
            recorded = {v: truth(i) for v, i in pairs if pd.notna(i)}
    from servebench.models.faithfulness import is_batch_invariant

    return {
        variant: recorded[variant] if variant in recorded else is_batch_invariant(model_dir)
        for variant, model_dir in model_dirs.items()
    }


def parity_row(row: dict[str, str], answer: Any, want: Any, limit: float | None) -> dict[str, Any]:
    ok_status = answer.status == 200 and isinstance(answer.body, dict)
    label = answer.body.get("label") if ok_status else None
    score = float(answer.body.get("score", float("nan"))) if ok_status else float("nan")
    diff = abs(score - want.score)
    return {
        "sentence_id": row["id"],
        "kind": row["kind"],
        "label": label,
        "score": score,
        "expected_label": want.label,
        "expected_score": want.score,
        "abs_diff": diff,
        "ok": bool(label == want.label and (limit is None or diff <= limit)),
        # No answer at all always stops the run.
        "fatal": limit is not None or label is None,
    }


def expected_labels(model_dir: Path, texts: list[str]) -> list[str]:
    """ONNX Runtime's label for each text (each distinct text classified once)."""
    if not texts:
        return []
    from servekit.inference import Classifier

    classifier = Classifier(model_dir, threads=1)
    labels = {text: classifier.classify(text).label for text in dict.fromkeys(texts)}
    return [labels[text] for text in texts]


def verify(
    proc: ServiceProcess,
    sentences: list[dict[str, str]],
    expected: dict[str, Any],
    *,
    batch_invariant: bool = True,
    concurrent: bool = False,
) -> list[dict[str, Any]]:
    """Parity rows for one service process; raises VerificationError on any mismatch.

    Sequential requests first. With `concurrent` (batched services) every sentence is then
    sent at once, one connection each, so short, long and truncated texts are batched and
    padded together: each must still get its own text's answer."""
    limit = tolerance("sequential")
    with Client(proc.host, proc.port) as client:
        rows = [
            {"check": "sequential", **parity_row(row, client.classify(row["text"]), want, limit)}
            for row in sentences
            for want in [expected[row["id"]]]
        ]
    if concurrent:
        rows += concurrent_rows(proc, sentences, expected, tolerance("concurrent", batch_invariant))
    bad = [r for r in rows if not r["ok"] and r["fatal"]]
    for row in rows:
        del row["fatal"]
    if bad:
        first = bad[0]
        raise VerificationError(
            f"{proc.service.name} disagrees with ONNX Runtime on {len(bad)} reference "
            f"sentence(s) ({first['check']} requests), e.g. {first['sentence_id']}: "
            f"{first['label']} {first['score']:.6f} vs {first['expected_label']} "
            f"{first['expected_score']:.6f}"
        )
    return rows


def concurrent_rows(
    proc: ServiceProcess,
    sentences: list[dict[str, str]],
    expected: dict[str, Any],
    limit: float | None,
) -> list[dict[str, Any]]:
    def one(row: dict[str, str]) -> dict[str, Any]:
        with Client(proc.host, proc.port) as client:
            answer = client.classify(row["text"])
        return {"check": "concurrent", **parity_row(row, answer, expected[row["id"]], limit)}

    with ThreadPoolExecutor(max_workers=len(sentences)) as pool:
        return list(pool.map(one, sentences))


def first_correct_answer(proc: ServiceProcess, text: str, want: Any) -> float:
    """Seconds from spawn to the first correct classification (the cold start)."""
    with Client(proc.host, proc.port) as client:
        answer = client.classify(text)
    if answer.status != 200 or answer.body.get("label") != want.label:
        raise VerificationError(
            f"{proc.service.name} first answer was {answer.status} {answer.body}"
        )
    return time.perf_counter() - proc.spawned_at
