"""The optional files of a synthetic run directory (tests/rundata.py), one function each.

Each takes the run's :class:`Shape` and the run's random generator and returns the file's
rows, with the columns docs/DATA.md lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from servebench import registry
from servebench.analysis import paired

PAYLOAD_FACTOR = {"seed": 1.0, "short": 0.7, "medium": 1.6, "long": 4.0}
#: stages.csv rows per unit and payload (the load test's parameters.stage_requests).
STAGE_REQUESTS = 90
#: A unit's starts in coldstarts.csv: the interleaved phase's, and its soak's fresh process.
STARTS = 2
#: How much faster each variant runs the model (tokenization is unchanged): int8 makes the
#: in-process loop about 3x faster, a served request (with its HTTP share) about 2.4x.
INFERENCE_SPEEDUP = {"fp32": 1.0, "optimized": 1.2, "int8": 4.5, "int8-static": 3.8}
#: Shares of a request's work at fp32: HTTP and handler, tokenization, inference.
HTTP_SHARE, TOKENIZATION_SHARE, INFERENCE_SHARE = 0.10, 0.15, 0.75


def variant_share(variant: str) -> float:
    """A variant's work per request as a fraction of fp32's."""
    return HTTP_SHARE + TOKENIZATION_SHARE + INFERENCE_SHARE / INFERENCE_SPEEDUP[variant]


@dataclass(frozen=True)
class Shape:
    """What the optional files are made for: the units (service, variant), their facts,
    payloads and made-up seconds of work per request at the seed payload."""

    units: list[tuple[str, str]]
    known: dict[str, dict[str, Any]]
    payloads: list[str]
    work: dict[tuple[str, str], float]

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self.units))

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(v for _, v in self.units))

    def rung(self, service: str) -> bool:
        """A rung of the ladder: measured at the seed point alone (registry ``rung``)."""
        return bool(self.known.get(service, {}).get("rung"))

    @property
    def full_units(self) -> list[tuple[str, str]]:
        """The units measured beyond the seed point (soak, open loop, every payload)."""
        return [(s, v) for s, v in self.units if not self.rung(s)]


def services_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                **shape.known.get(s, {"service": s, "label": s}),
                "cold_start_s": float(rng.uniform(0.5, 4.0)),
                "size_mb": float(rng.uniform(5, 900)),
                "binary": f"service/{s}",
            }
            for s in shape.services
        ]
    )


def batched(shape: Shape, service: str) -> bool:
    return bool(shape.known.get(service, {}).get("batching", False))


def parity_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "service": s,
                "variant": v,
                "check": check,
                "sentence_id": i,
                "kind": kind,
                "label": "POSITIVE",
                "score": 0.99,
                "expected_label": "POSITIVE",
                "expected_score": 0.99,
                "abs_diff": 1e-7,
                "ok": True,
            }
            for s, v in shape.units
            for check in ("sequential", "concurrent")[: 2 if batched(shape, s) else 1]
            for i, kind in enumerate(("short", "long", "truncated"))
        ]
    )


def stages_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for s, v in shape.units:
        for p in shape.payloads if not shape.rung(s) else ["seed"]:
            # The fp32 request's microseconds; the variant speeds up its inference share.
            us = shape.work[s, v] / variant_share(v) * PAYLOAD_FACTOR.get(p, 1.0) * 1e6
            for _ in range(STAGE_REQUESTS):
                tok = TOKENIZATION_SHARE * us * rng.lognormal(0, 0.1)
                inf = INFERENCE_SHARE * us / INFERENCE_SPEEDUP[v] * rng.lognormal(0, 0.1)
                handler = tok + inf + HTTP_SHARE * us * rng.lognormal(0, 0.1)
                rows.append(
                    {
                        "service": s,
                        "variant": v,
                        "payload": p,
                        "client_us": handler + rng.uniform(300, 900),
                        "tokenization_us": tok,
                        "inference_us": inf,
                        "handler_us": handler,
                        # One request at a time: a batched service's batches hold one.
                        "batch_size": 1 if batched(shape, s) else None,
                        "queue_us": 20.0 if batched(shape, s) else None,
                    }
                )
    return pd.DataFrame(rows)


def ceiling_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for i, impl in enumerate(registry.inference_kinds()):
        w = 0.017 / 2**i
        for v in shape.variants:
            for p in shape.payloads:
                us = w * PAYLOAD_FACTOR.get(p, 1.0) * 1e6
                for it in range(100):
                    tok = 0.15 * us * rng.lognormal(0, 0.05)
                    inf = 0.8 * us / INFERENCE_SPEEDUP[v] * rng.lognormal(0, 0.05)
                    rows.append(
                        {
                            # timed in the rounds of the payload's first point: 3 of them
                            "payload": p,
                            "concurrency": 50 if p == "seed" else 1,
                            "round": it % 3,
                            "order": 0,
                            "variant": v,
                            "impl": impl,
                            "iteration": it,
                            "tokenization_us": tok,
                            "inference_us": inf,
                            "total_us": tok + inf,
                        }
                    )
    return pd.DataFrame(rows)


def openloop_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for s, v in shape.full_units:
        work = shape.work[s, v]
        for attack, rate in enumerate((10, 20, 30, 40, 50, 60, 80, 100, 120)):
            load = rate * work
            p50 = work / max(1 - min(load, 0.98), 0.02)
            p99 = p50 * (3 if load < 1 else 30)
            rows.append(
                {
                    "service": s,
                    "variant": v,
                    "attack": attack,
                    "payload": "seed",
                    "rate": rate,
                    "duration_s": 30,
                    "requests": rate * 30,
                    "success": 1.0 if load < 1.1 else 0.9,
                    "throughput": min(rate, 1 / work),
                    "p50_s": p50,
                    "p90_s": p50 * 2,
                    "p99_s": p99,
                    "max_s": p99 * 1.5,
                    "clean": bool(load < 1.1),
                    "send_lag_p99_s": 2e-4,
                    # vegeta's CPU grows with the rate it paces (no draw: the files above
                    # keep the numbers they drew)
                    "loadgen_cpu_s": 30.5 * min(0.9, rate / 150),
                    "loadgen_wall_s": 30.5,
                }
            )
    return pd.DataFrame(rows)


def soak_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "service": s,
                "variant": v,
                "duration_s": 300,
                "concurrency": 8,
                "requests": 20000,
                "non_2xx": 0,
                "rss_warm_mb": 200.0,
                "rss_end_mb": 201.0,
                "rss_growth": 0.005,
            }
            for s, v in shape.full_units
        ]
    )


def coldstarts_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"service": s, "variant": v, "start": n, "cold_start_s": float(rng.uniform(0.5, 4))}
            for s, v in shape.units
            for n in range(STARTS)
        ]
    )


def variants_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    """variants.csv as the export notebook writes it: int8 a quarter of fp32's size, labels
    agreeing on all but a few sentences; dynamic int8 alone moved by its batch-mates."""
    rows = []
    for v in shape.variants:
        quantized = v.startswith("int8")
        dynamic = v == "int8"
        kind = "dynamic" if dynamic else "static"
        rows.append(
            {
                "variant": v,
                "isa": "avx512_vnni" if quantized else "",
                "quantization": f"{kind} int8, QInt8 per-channel weights" if quantized else "none",
                "onnx_mb": 90.5 / (4 if quantized else 1),
                "sentences": 400,
                "label_agreement": 0.9925 if quantized else 1.0,
                "max_abs_score_diff": 0.031 if quantized else 0.0,
                "held_out_accuracy": 0.905 if quantized else 0.9125,
                "fp32_held_out_accuracy": 0.9125,
                "batch_max_abs_diff": 0.011 if dynamic else 0.0,
                "batch_label_flips": 1 if dynamic else 0,
                "batch_invariant": not dynamic,
                "model_dir": f"data/models/test--minilm-sentiment{'' if v == 'fp32' else '.' + v}",
            }
        )
    return pd.DataFrame(rows)


def batch_ceiling_csv(shape: Shape, rng: np.random.Generator) -> pd.DataFrame:
    """Batched services' batch path: per-item cost falls with the batch size, to ~2.3x."""
    rows = []
    for s in (s for s in shape.services if batched(shape, s)):
        impl = shape.known[s]["inference"]
        for v in shape.variants:
            item_us = 0.017e6 / (2 if impl == "rust" else 1) / INFERENCE_SPEEDUP[v] ** 0.5
            for b in (1, 2, 4, 8, 16, 32):
                per_item = item_us * (0.43 + 0.57 / b**0.8)
                for it in range(10):
                    total = b * per_item * rng.lognormal(0, 0.03)
                    rows.append(
                        {
                            "payload": "seed",  # timed in the seed point's rounds
                            "concurrency": 50,
                            "round": it % 3,
                            "order": 0,
                            "variant": v,
                            "service": s,
                            "impl": impl,
                            "batch_size": b,
                            "iteration": it,
                            "tokenization_us": 0.1 * total,
                            "inference_us": 0.85 * total,
                            "total_us": total,
                        }
                    )
    return pd.DataFrame(rows)


#: The synthetic core's peak (GOP/s) per precision, and one model's arithmetic per token.
PEAK_GOPS = {"fp32": 100.0, "int8": 400.0}
FLOP_PER_TOKEN, ATTENTION_PER_TOKEN2 = 21.0e6, 3.0e4


def core_peak_csv(rng: np.random.Generator) -> pd.DataFrame:
    """core_peak.csv as the load test writes it: two timings (before and after the rounds)
    of each precision on a few shapes, the best of all at :data:`PEAK_GOPS`."""
    rows = []
    for when in ("before", "after"):
        for precision, peak in PEAK_GOPS.items():
            for k, (m, kk, n) in enumerate([(1024, 1024, 1024), (16, 384, 1536), (256, 384, 1536)]):
                top = when == "after" and k == 2  # the best shape, in the second timing
                rate = peak if top else peak * rng.uniform(0.6, 0.95)
                ops = 2 * m * kk * n
                rows.append(
                    {
                        "when": when,
                        "precision": precision,
                        "m": m,
                        "k": kk,
                        "n": n,
                        "calls": 100,
                        "best_s": ops / rate / 1e9,
                        "gop_per_s": rate,
                        "cpu": "0",
                        "isa": "avx512_vnni",
                    }
                )
    return pd.DataFrame(rows)


def flops_csv(shape: Shape, payload_tokens: dict[str, float]) -> pd.DataFrame:
    """flops.csv: every variant's arithmetic per request for each payload (tokens as given):
    fp32 all floating point; an int8 variant the same MACs, the projections as integer ops
    and attention in floating point."""
    rows = []
    for v in shape.variants:
        for payload, tokens in payload_tokens.items():
            attention = ATTENTION_PER_TOKEN2 * tokens**2
            flop = FLOP_PER_TOKEN * tokens + attention
            integer = flop - attention if v.startswith("int8") else 0.0
            rows.append(
                {
                    "variant": v,
                    "payload": payload,
                    "tokens": tokens,
                    "flop": flop,
                    "float_flop": flop - integer,
                    "integer_op": integer,
                    "attention_flop": attention,
                }
            )
    return pd.DataFrame(rows)


#: The optional files drawn in this order (coldstarts.csv and variants.csv come last).
WRITERS = {
    "services": services_csv, "parity": parity_csv, "stages": stages_csv,
    "ceiling": ceiling_csv, "openloop": openloop_csv, "soak": soak_csv,
}  # fmt: skip


def points_csv(
    shape: Shape, loadtests: pd.DataFrame, target_pct: float, max_rounds: int
) -> pd.DataFrame:
    """points.csv as the interleaved load test writes it: one row per point, its rounds and
    whether every ratio's interval got within ``target_pct`` (computed from the bursts as
    the load test does, with the same comparisons)."""
    units = shape.units
    facts = {s: shape.known.get(s, {}) for s in shape.services}
    compared = paired.comparisons(
        units,
        {s: str(f.get("baseline", "")) for s, f in facts.items()},
        {s: str(f.get("twin", "")) for s, f in facts.items()},
        controls=[s for s, f in facts.items() if f.get("control")],
        steps={s: str(f.get("step_from", "")) for s, f in facts.items()},
        rungs=[s for s, f in facts.items() if f.get("rung")],
    )
    paired_rounds = loadtests[~loadtests["seed_table"].astype(bool)]
    bursts = paired_rounds[["service", "variant", "payload", "concurrency", "round", "rps"]]
    table = paired.ratio_table(bursts, compared, target_pct)
    rows = []
    clock = pd.Timestamp("2026-01-01T12:05:00+00:00")
    for (payload, c), point in paired_rounds.groupby(["payload", "concurrency"], sort=False):
        mine = table[(table["payload"] == payload) & (table["concurrency"] == c)]
        widest = float(mine["half_width_pct"].fillna(np.inf).max()) if len(mine) else np.inf
        control = mine[mine["kind"] == "control"]
        rounds = int(point["round"].nunique())
        converged = bool(len(mine) and widest <= target_pct)
        wall = float(point["total_s"].sum()) * 1.05  # the bursts and the pauses between them
        rows.append(
            {
                "payload": payload,
                "concurrency": int(c),
                "units": int(point[["service", "variant"]].drop_duplicates().shape[0]),
                # a loop per inference kind and variant (ceiling_csv's; the batch paths'
                # too at the seed point, batch_ceiling_csv's six sizes)
                "in_process_units": len(registry.inference_kinds()) * len(shape.variants)
                + (6 * len(shape.variants) * sum(batched(shape, s) for s in shape.services))
                * (payload == "seed" and int(c) == 50),
                "rounds": rounds,
                "converged": converged,
                "max_half_width_pct": widest,
                "control_ratio": float(control["ratio"].iloc[0]) if len(control) else np.nan,
                "noise_floor_pct": float(control["half_width_pct"].iloc[0])
                if len(control)
                else np.nan,
                "target_ci_pct": target_pct,
                "wall_s": wall,
                # Short of max_rounds and of the target, only the time budget stops a point.
                "stop": "converged"
                if converged
                else ("max_rounds" if rounds >= max_rounds else "budget"),
                "started": clock.isoformat(),
            }
        )
        clock += pd.Timedelta(seconds=wall)
    return pd.DataFrame(rows)


def drift_csv(loadtests: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """drift.csv: the probe before the first point, then after every round of every point,
    on a machine that slows by up to ~8 % and back over the phase."""
    base_us, rows, elapsed = 14_000.0, [], 0.0
    # In the order measured: the points as they come, each one's seed-table round first.
    keys = list(zip(loadtests["payload"], loadtests["concurrency"], strict=True))
    points = list(dict.fromkeys(keys))
    first = loadtests.assign(
        point_rank=[points.index(p) for p in keys],
        paired=~loadtests["seed_table"].astype(bool),
    ).sort_values(["point_rank", "paired", "round"], kind="stable")
    rounds = first.groupby(["payload", "concurrency", "round"], sort=False)["total_s"].sum()
    period = max(float(rounds.sum()), 1e-6)

    def probe(after: tuple[str, int, int]) -> None:
        slow = 1 + 0.04 * (1 - np.cos(2 * np.pi * elapsed / period))
        rows.append(
            {
                "seq": len(rows),
                "elapsed_s": elapsed,
                "payload": after[0],
                "concurrency": after[1],
                "round": after[2],
                "probe_us": base_us * slow * rng.lognormal(0, 0.005),
                "iterations": 50,
            }
        )

    probe(("", 0, -1))
    for (payload, c, r), seconds in rounds.items():
        elapsed += float(seconds) * 1.05
        probe((str(payload), int(c), int(r)))
    return pd.DataFrame(rows)


#: Requests per burst of the synthetic mixed workload.
MIXED_REQUESTS = 120
#: Token counts the synthetic workload always holds, its first texts: each side of the length
#: classes' bounds (servebench.analysis.length_classes).
ON_THE_BOUNDS = (31, 32, 255, 256)
#: The rows of the mixed burst that fails (row: status): two 500 answers and a connection
#: error (vegeta's status 0), each slower than any answer, so that a percentile that took
#: them in would show it.
MIXED_ERRORS = {10: 500, 11: 500, 12: 0}
ERROR_TIME_S = 60.0  # a client timeout


def workload_csv(rng: np.random.Generator) -> pd.DataFrame:
    """workload.csv: mostly short texts, some of a paragraph's length, a few long reviews
    (truncated at 512 tokens), opening with :data:`ON_THE_BOUNDS`."""
    n = MIXED_REQUESTS
    kind = rng.choice(3, n, p=[0.8, 0.15, 0.05])
    lengths = [rng.integers(6, 32, n), rng.integers(32, 256, n), rng.integers(256, 513, n)]
    tokens = np.choose(kind, lengths)
    tokens[: len(ON_THE_BOUNDS)] = ON_THE_BOUNDS
    chars = tokens * 4 + rng.integers(0, 4, n)
    return pd.DataFrame({"seq": np.arange(n), "chars": chars, "tokens": tokens})


def mixed_burst(
    work_s: float,
    tokens: np.ndarray,
    concurrency: int,
    batched: bool,
    failing: dict[int, int],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One closed-loop burst of the mixed workload, as vegeta records it: a request's time
    grows with its text's tokens and with the queue of the other clients (shorter for a
    batched service); the rows of ``failing`` (row: status) answer with that status."""
    own = work_s * (0.3 + tokens / 16)
    queue = (concurrency - 1) * own.mean() * (0.4 if batched else 1.0)
    latency = (own + queue) * rng.lognormal(0, 0.1, len(tokens))
    status = np.full(len(tokens), 200)
    for row, code in failing.items():
        status[row], latency[row] = code, ERROR_TIME_S
    total = latency.sum() / concurrency
    return pd.DataFrame(
        {
            "response_time_s": latency,
            "status_code": status,
            "offset_s": np.sort(rng.uniform(0, max(total - latency.max(), 1e-3), len(tokens))),
            "seq": np.arange(len(tokens)),
            "error": ["connection reset by peer" if s == 0 else "" for s in status],
            "batch_size": rng.integers(1, 9, len(tokens)) if batched else np.nan,
        }
    )


@dataclass(frozen=True)
class Burst:
    """One burst's loadtests.csv facts: its key, its position in its round, the requests
    sent and answered (rows recorded), its errors and its Total."""

    service: str
    variant: str
    payload: str
    concurrency: int
    round: int
    order: int
    n: int
    answered: int
    errors: int
    total_s: float


def loadtest_row(
    burst: Burst,
    known: dict[str, dict[str, Any]],
    k: int,
    seed_table: bool,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The burst's loadtests.csv row, the ``k``-th of the run, with made-up resources."""
    cpu = burst.total_s * rng.uniform(0.85, 0.98)
    python = known.get(burst.service, {}).get("inference", "python") == "python"
    return {
        "service": burst.service,
        "variant": burst.variant,
        "payload": burst.payload,
        "concurrency": burst.concurrency,
        "round": burst.round,
        "order": burst.order,
        "n": burst.n,
        "errors": burst.errors,
        "total_s": burst.total_s,
        "rps": burst.answered / burst.total_s,
        "cpu_s": cpu,
        "cpu_s_per_req": cpu / burst.n,
        # A Python interpreter in the process costs memory.
        "peak_rss_mb": 300 + 50 * rng.random() if python else 120 + 20 * rng.random(),
        "rss_after_mb": 290.0,
        # The load generator's share of its CPU: 15-85 %, by the burst's place in the run (no
        # draw, so that the other columns keep the numbers they drew).
        "loadgen_cpu_s": (burst.total_s + 0.02) * (0.15 + 0.1 * (k % 8)),
        "loadgen_wall_s": burst.total_s + 0.02,
        **batch_counts(burst, known),
        "started": f"2026-01-01T12:{k % 60:02d}:00+00:00",
        "seed_table": seed_table,
    }


#: A synthetic batched burst's runs: up to this many rows of ROW_TOKENS tokens each.
RUN_ROWS, ROW_TOKENS = 8, 16


def batch_counts(burst: Burst, known: dict[str, dict[str, Any]]) -> dict[str, int | None]:
    """loadtests.csv's batch_* of the burst: a batched service runs its answered requests in
    runs of min(concurrency, RUN_ROWS) rows, padded by a quarter on the mixed workload only
    (the other payloads repeat one text); empty for the other services."""
    columns = ["batch_runs", "batch_rows", "batch_tokens", "batch_positions"]
    if not known.get(burst.service, {}).get("batching", False):
        return dict.fromkeys(columns)
    rows = burst.answered
    runs = -(-rows // min(burst.concurrency, RUN_ROWS))
    tokens = rows * ROW_TOKENS
    positions = tokens * 5 // 4 if burst.payload == "mixed" else tokens
    return dict(zip(columns, [runs, rows, tokens, positions], strict=True))


@dataclass(frozen=True)
class MixedRun:
    """The mixed workload's files: workload.csv, and its bursts' request and loadtests rows."""

    workload: pd.DataFrame
    requests: list[pd.DataFrame]
    loadtests: list[dict[str, Any]]
    replay: pd.DataFrame  # replay.csv: the batched services' passes at 1 and c clients


#: The made-up gain of a replay at the point's concurrency over one client.
REPLAY_GAIN = 1.3


def replay_csv(
    shape: Shape, tokens: np.ndarray, c: int, r: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """One round's replay passes at concurrency ``c``: each batched unit at one client and,
    above one, at ``c`` clients (REPLAY_GAIN faster), over every text of the workload."""
    rows = []
    for s, v in shape.full_units:
        if not batched(shape, s):
            continue
        for clients in sorted({1, c}):
            per_text_s = shape.work[s, v] * tokens.mean() / 16 / (REPLAY_GAIN if clients > 1 else 1)
            total_us = per_text_s * len(tokens) * 1e6 * rng.lognormal(0, 0.02)
            rows.append(
                {
                    "service": s,
                    "impl": shape.known[s]["inference"],
                    "variant": v,
                    "payload": "mixed",
                    "concurrency": c,
                    "round": r,
                    "order": len(rows),
                    "clients": clients,
                    "iteration": 0,
                    "texts": len(tokens),
                    "total_us": round(total_us),
                }
            )
    return rows


def mixed_run(
    shape: Shape,
    levels: Sequence[int],
    rounds: dict[tuple[str, int], int],
    min_rounds: int,
    rng: np.random.Generator,
) -> MixedRun:
    """The mixed workload at each of ``levels``, every unit but the rungs in every round
    (``rounds`` per level, else ``min_rounds``); the first batched unit's fp32 burst of the
    first level's first round fails :data:`MIXED_ERRORS`."""
    workload = workload_csv(rng)
    tokens = workload["tokens"].to_numpy()
    units = shape.full_units
    failing = next(
        ((s, v, levels[0], 0) for s, v in units if batched(shape, s) and v == "fp32"), None
    )
    requests: list[pd.DataFrame] = []
    loadtests: list[dict[str, Any]] = []
    for c in levels:
        for r in range(rounds.get(("mixed", c), min_rounds)):
            for order, (s, v) in enumerate(units):
                errors = MIXED_ERRORS if (s, v, c, r) == failing else {}
                burst = mixed_burst(shape.work[s, v], tokens, c, batched(shape, s), errors, rng)
                requests.append(
                    burst.assign(service=s, variant=v, payload="mixed", concurrency=c, round=r)
                )
                total = float((burst["offset_s"] + burst["response_time_s"]).max())
                facts = Burst(
                    s, v, "mixed", c, r, order, len(burst), len(burst), len(errors), total
                )
                loadtests.append(loadtest_row(facts, shape.known, len(loadtests), False, rng))
    # Last, so that the rows above draw what they drew before replays existed.
    replay = [
        row
        for c in levels
        for r in range(rounds.get(("mixed", c), min_rounds))
        for row in replay_csv(shape, tokens, c, r, rng)
    ]
    return MixedRun(workload, requests, loadtests, pd.DataFrame(replay))
