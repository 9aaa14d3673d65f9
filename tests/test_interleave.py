"""The interleaved phase's decisions (when a point stops) and its drift probe, a real
process on the exported model."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from servebench import paths, registry
from servebench.analysis import paired
from servebench.loadrun import ClosedLoopRun
from servebench.measure import hey, interleave
from servebench.measure.drift import DriftError, DriftProbe
from servebench.measure.interleave import comparisons, stop_reason
from servebench.measure.plan import Unit
from servebench.rundir.writer import RunWriter

pytestmark = pytest.mark.unit


def ratios(*half_widths: float, target: float = 3.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"half_width_pct": list(half_widths), "converged": [w <= target for w in half_widths]}
    )


def stop(rounds: int, table: pd.DataFrame, elapsed_s: float = 10.0, budget_s: float = 100.0) -> str:
    return stop_reason(
        rounds, table, min_rounds=4, max_rounds=8, elapsed_s=elapsed_s, budget_s=budget_s
    )


def test_a_point_converges_only_after_a_complete_pair_of_rounds_from_the_minimum() -> None:
    tight = ratios(1.0, 2.5)
    assert stop(2, tight) == ""  # below min_rounds
    assert stop(4, tight) == "converged"
    assert stop(5, tight) == ""  # the 5th round's reversed twin is still to come
    assert stop(6, tight) == "converged"


def test_one_wide_ratio_keeps_the_point_running_until_its_last_round() -> None:
    wide = ratios(1.0, 3.5)
    assert [stop(n, wide) for n in range(1, 8)] == [""] * 7
    assert stop(8, wide) == "max_rounds"


def test_the_budget_stops_a_point_before_a_round_would_overrun_it_but_not_below_the_floor() -> None:
    wide = ratios(9.0)
    # 4 rounds in 80 s: a fifth would end at ~100 s, past a 90 s budget
    assert stop(4, wide, elapsed_s=80, budget_s=90) == "budget"
    assert stop(4, wide, elapsed_s=60, budget_s=90) == ""
    # below min_rounds the budget does not count: no interval from fewer rounds
    assert stop(2, wide, elapsed_s=500, budget_s=90) == ""
    assert stop(5, wide, elapsed_s=500, budget_s=0) == ""  # 0: no budget


def test_a_point_without_any_ratio_to_state_stops_at_the_minimum() -> None:
    empty = pd.DataFrame(columns=paired.RATIO_COLUMNS)
    assert stop(3, empty) == "" and stop(4, empty) == "converged"


def test_the_point_compares_each_unit_with_its_registry_baseline_twin_and_fp32() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default"))
    found = comparisons(plan.units_at(("long", 1)))
    kinds = {(c.kind, c.unit, c.versus) for c in found}
    assert ("baseline", ("rust-native-release", "int8"), ("python", "int8")) in kinds
    assert ("variant", ("python-batched", "int8"), ("python-batched", "fp32")) in kinds
    assert ("batching", ("rust-native-batched", "fp32"), ("rust-native-release", "fp32")) in kinds
    assert not any("debug" in c.unit[0] for c in found)  # not measured at this point
    assert ("control", ("python-aa", "fp32"), ("python", "fp32")) in kinds
    assert ("variant", ("python", "int8-static"), ("python", "fp32")) in kinds
    assert ("tuned", ("rust-native-release", "int8"), ("python-tuned", "int8")) in kinds
    assert not any(c.kind == "step" for c in found)  # the ladder: the seed point only
    # 6 services x 3 variants: 15 baseline (all but python), 4 x 3 tuned (all but python and
    # python-tuned), 6 x 2 variant (each int8 to fp32), 2 x 3 batching; the A/A control
    # (fp32) against python only
    assert plan.study.variants == ["fp32", "int8", "int8-static"]
    assert len(found) == 15 + 12 + 12 + 6 + 1
    seed = {(c.kind, c.unit, c.versus) for c in comparisons(plan.units_at(plan.all_points()[0]))}
    assert ("step", ("python-tuned", "fp32"), ("ladder-thin", "fp32")) in seed
    assert ("step", ("ladder-granian", "fp32"), ("python-tuned", "fp32")) in seed
    # the ladder's first step is its baseline: stated once
    assert ("baseline", ("ladder-uvloop", "fp32"), ("python", "fp32")) in seed
    assert not any(k[1][0] == "ladder-uvloop" and k[0] == "step" for k in seed)
    assert not any(k[1][0].startswith("ladder") and k[1][1] != "fp32" for k in seed)


def test_a_probe_that_cannot_start_says_why(tmp_path: Path) -> None:
    probe = DriftProbe(tmp_path, paths.PAYLOADS / "seed.txt", threads=1, cpus=None)
    with probe, pytest.raises(DriftError, match="drift probe"):
        probe.measure(1)


def test_the_probe_loop_answers_one_median_per_request_line() -> None:
    class Fake:
        def __init__(self) -> None:
            self.calls = 0

        def classify(self, _text: str) -> None:
            self.calls += 1

    fake = Fake()

    import servebench.measure.drift as drift

    out = io.StringIO()
    drift.probe(fake, "text", io.StringIO("3\n2\n"), out)
    answers = out.getvalue().split("\n\n")  # each answer ends with an empty line
    assert answers[-1] == "" and len(answers) == 3
    assert all(math.isfinite(float(v)) for v in answers[:-1])
    assert fake.calls == drift.WARMUP + 3 + 2


def test_the_probe_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servebench.measure.drift", "--help"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "iteration counts on stdin" in result.stdout


def test_a_burst_is_written_under_its_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """loadtests.csv's row, the raw records and hey's text all carry the burst's round."""
    records = pd.DataFrame({"response_time_s": [0.01, 0.02], "status_code": [200, 200]})
    records["offset_s"] = [0.0, 0.005]
    run = ClosedLoopRun(records, requested=2, concurrency=2, wall_s=0.1)
    measured = {"n": 2, "errors": 0, "total_s": 0.025, "rps": 80.0}
    monkeypatch.setattr(interleave, "measure_point", lambda *_: (measured, run))
    monkeypatch.setattr(interleave, "report_point", lambda *_: None)
    service = next(iter(registry.load_registry().values()))
    unit = Unit(service, "fp32", tmp_path)
    # No process and no plan: measure_point, their only user here, is replaced.
    proc: Any = None
    plan: Any = None
    warm = interleave.Warm(unit, proc, {"seed": 0.01}, [])
    writer = RunWriter(tmp_path / "run")
    row = interleave.burst(plan, warm, ("seed", 2), 3, 1, writer)
    assert (row["round"], row["order"]) == (3, 1)
    assert pd.read_csv(tmp_path / "run" / "loadtests.csv")["round"].tolist() == [3]
    stem = f"{service.name}__fp32__seed__c2__r3"
    raw = pd.read_csv(tmp_path / "run" / "raw" / f"{stem}.csv")
    assert list(raw.columns[:5]) == ["service", "variant", "payload", "concurrency", "round"]
    assert (tmp_path / "run" / "hey" / f"{stem}.txt").read_text() == hey.render_summary(run)


def test_each_burst_is_paced_by_the_units_last_one_at_the_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batched service answers far faster under load than its c=1 latency says: sized from
    that latency its bursts were a third as long as its twin's and paid a larger share of
    ramp-up and drain. From its second burst at a point on, a unit is paced by its own
    throughput there."""
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default", ["burst_s=0.5"]))
    asked: list[float] = []
    records = pd.DataFrame({"response_time_s": [0.01], "status_code": [200], "offset_s": [0.0]})

    def fake_measure(_plan, _proc, _payload, concurrency, pace_s, requests=None):
        asked.append(pace_s)
        n = requests or _plan.hey_requests(concurrency, pace_s)
        return {"n": n, "errors": 0, "total_s": n / 800, "rps": 800.0}, ClosedLoopRun(
            records, requested=1, concurrency=1, wall_s=0.1
        )

    monkeypatch.setattr(interleave, "measure_point", fake_measure)
    monkeypatch.setattr(interleave, "report_point", lambda *_: None)
    unit = Unit(next(iter(registry.load_registry().values())), "fp32", tmp_path)
    proc: Any = None
    warm = interleave.Warm(unit, proc, {"seed": 0.004}, [])
    writer = RunWriter(tmp_path / "run")
    first = interleave.burst(plan, warm, ("seed", 50), 0, 0, writer)
    second = interleave.burst(plan, warm, ("seed", 50), 1, 0, writer)
    other = interleave.burst(plan, warm, ("seed", 16), 0, 0, writer)
    assert asked == [0.004, 1 / 800, 0.004]  # another point starts from the c=1 latency again
    assert (first["n"], second["n"], other["n"]) == (150, 400, 128)


def test_orders_are_counterbalanced_and_keep_only_the_active_units() -> None:
    import random

    rng = random.Random(1)
    first = interleave.next_order([], ["a", "b", "c", "d"], 0, rng)
    assert sorted(first) == ["a", "b", "c", "d"]
    assert interleave.next_order(first, ["a", "b", "c", "d"], 1, rng) == first[::-1]
    # A unit sits out from an even round on; the reversal keeps the others' order.
    third = interleave.next_order(first[::-1], ["a", "c", "d"], 2, rng)
    assert sorted(third) == ["a", "c", "d"]
    assert interleave.next_order(third, ["a", "c", "d"], 3, rng) == third[::-1]


def _units(*names: str) -> list[Unit]:
    known = registry.load_registry()
    return [Unit(known[name], "fp32", Path("/m")) for name in names]


def test_only_the_units_of_a_wide_ratio_keep_running() -> None:
    units = _units("python", "rust-native-release", "rust-ffi-release", "python-aa")
    table = pd.DataFrame(
        {
            "service": ["rust-native-release", "rust-ffi-release", "python-aa"],
            "variant": ["fp32"] * 3,
            "versus_service": ["python"] * 3,
            "versus_variant": ["fp32"] * 3,
            "converged": [True, False, True],
        }
    )
    keys = {u.name: (u.service.name, u.variant) for u in units}
    keys["in-process:python·fp32"] = ("in-process:python", "fp32")
    assert interleave.still_needed(keys, table) == ["python·fp32", "rust-ffi-release·fp32"]
    assert interleave.still_needed(keys, table.assign(converged=True)) == []
    # an in-process unit is kept by its wide ratio like a service
    loop = pd.DataFrame(
        {
            "service": ["python"], "variant": ["fp32"], "versus_service": ["in-process:python"],
            "versus_variant": ["fp32"], "converged": [False],
        }
    )  # fmt: skip
    assert interleave.still_needed(keys, loop) == ["python·fp32", "in-process:python·fp32"]


def test_a_point_spends_its_rounds_on_the_ratios_still_wide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A noisy unit keeps itself and its baseline running; the steady ones sit out once
    their ratios have converged; the seed table's round comes first and pairs nothing."""
    import random

    from servebench import config
    from servebench.measure.plan import Plan

    study = config.load_study(
        "default",
        [
            "services=[python,rust-native-release,rust-ffi-release,python-aa]",
            "variants=[fp32]", "min_rounds=4", "max_rounds=12", "seed_point_budget_s=0",
        ],
    )  # fmt: skip
    plan = Plan.from_study(study)
    noise = random.Random(3)
    speed = {"python": 100.0, "python-aa": 100.0, "rust-native-release": 130.0}
    speed["rust-ffi-release"] = 110.0
    calls: list[tuple[str, int, bool]] = []

    def fake_burst(_plan, warm, _point, number, position, writer, seed_table=False):
        name = warm.unit.service.name
        calls.append((name, number, seed_table))
        wobble = 0.3 if name == "rust-ffi-release" else 0.001
        rps = speed[name] * (1 + noise.uniform(-wobble, wobble))
        return {"service": name, "variant": "fp32", "round": number, "rps": rps}

    class Probe:
        def measure(self) -> dict[str, Any]:
            return {"seq": 0, "elapsed_s": 0.0, "probe_us": 1.0, "iterations": 1}

    monkeypatch.setattr(interleave, "burst", fake_burst)
    warm = {u.name: interleave.Warm(u, Any, {}, []) for u in plan.units}
    writer = RunWriter(tmp_path / "run")
    probe: Any = Probe()
    row = interleave.measure_point_interleaved(plan, ("seed", 50), warm, writer, probe, 5)
    table_round = [c for c in calls if c[2]]
    assert len(table_round) == 4 and {c[1] for c in table_round} == {0}
    paired_calls = [c for c in calls if not c[2]]
    count = {name: sum(1 for c in paired_calls if c[0] == name) for name in speed}
    assert row["rounds"] == 12 and row["stop"] == "max_rounds"
    assert count["rust-ffi-release"] == count["python"] == 12
    assert count["rust-native-release"] == count["python-aa"] == 4  # sat out from round 5
    assert row["noise_floor_pct"] < 1 and row["control_ratio"] == pytest.approx(1, abs=0.01)


class _Tool:
    """A resident tool's stand-in answering the in-process protocol: one call per line
    asked for, each `call_us`, the first `cold` calls of the run three times as slow."""

    def __init__(self, call_us: float, cold: int = 0) -> None:
        self.call_us, self.cold, self.asked = call_us, cold, []

    def ask(self, request: str) -> list[str]:
        self.asked.append(request)
        *size, calls = request.split()  # "K" for a loop, "B K" for a batch path
        answer = []
        for i in range(int(calls)):
            us = self.call_us * (3 if self.cold > 0 else 1)
            self.cold -= 1
            answer.append(",".join([*size, str(i), "0", "0", f"{us:.0f}"]))
        return answer


def _local(tool: Any, *members: tuple[str, str, str, int]) -> list[Any]:
    from servebench.measure.inprocess import InProcessUnit

    return [InProcessUnit(k, owner, v, "seed", b, tool) for k, owner, v, b in members]


def test_an_in_process_tool_takes_its_turn_with_its_units_back_to_back() -> None:
    """int8 ÷ fp32 and batch b ÷ batch 1 compare bursts of one turn, not of the round."""
    tool: Any = _Tool(1000)
    local = _local(
        tool,
        ("loop", "python", "fp32", 1), ("loop", "python", "int8", 1),
        ("batch", "python-batched", "fp32", 1), ("batch", "python-batched", "fp32", 16),
    )  # fmt: skip
    groups = interleave.turns(["python·fp32", "python·int8"], local)
    assert groups == {
        "python·fp32": ["python·fp32"],
        "python·int8": ["python·int8"],
        "in-process:python": ["in-process:python·fp32", "in-process:python·int8"],
        "batch-path:python-batched": [
            "batch-path:python-batched:1·fp32", "batch-path:python-batched:16·fp32"
        ],
    }  # fmt: skip
    order = ["batch-path:python-batched", "python·fp32", "in-process:python"]
    everyone = [name for members in groups.values() for name in members]
    assert interleave.round_bursts(order, groups, everyone, 0) == [
        "batch-path:python-batched:1·fp32", "batch-path:python-batched:16·fp32",
        "python·fp32", "in-process:python·fp32", "in-process:python·int8",
    ]  # fmt: skip
    # the next round reverses the turns (next_order) and the units within each turn; a unit
    # sitting out leaves its turn's others running
    active = [n for n in everyone if n != "in-process:python·int8"]
    assert interleave.round_bursts(order[::-1], groups, active, 1) == [
        "in-process:python·fp32", "python·fp32",
        "batch-path:python-batched:16·fp32", "batch-path:python-batched:1·fp32",
    ]  # fmt: skip


def test_an_in_process_units_first_burst_is_preceded_by_an_untimed_one() -> None:
    """The cold calls after minutes idle are not timed; each burst is sized from the one
    before."""
    tool: Any = _Tool(2000, cold=3)
    (unit,) = _local(tool, ("batch", "python-batched", "fp32", 4))
    rows, median_us = unit.burst(0.1)
    assert median_us == 2000 and (rows["total_us"] == 2000).all()
    assert tool.asked == ["4 3", "4 17"]  # 0.1 s at the cold 6 ms
    unit.burst(0.1)
    assert tool.asked[2:] == ["4 50"]  # no warm-up after the first; 0.1 s of 2 ms calls


def test_the_in_process_tools_are_settled_before_any_service_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """start_units returns only once each tool answered one call (it has loaded its model
    and made its warm-up calls): each tool asked once, whatever its units; the units' first
    bursts still follow an untimed call."""
    import contextlib

    from servebench import config
    from servebench.measure import inprocess
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("quick"))
    loops: dict[tuple[str, str, str], Any] = {
        ("python", "fp32", "seed"): _Tool(1000),
        ("rust", "fp32", "seed"): _Tool(500),
    }
    batch: dict[tuple[str, str], Any] = {("python-batched", "fp32"): _Tool(4000)}
    replays: dict[tuple[str, str], Any] = {("python-batched", "fp32"): _Replay(texts=100)}
    monkeypatch.setattr(inprocess, "loop_tools", lambda *_: loops)
    monkeypatch.setattr(inprocess, "batch_tools", lambda *_: batch)
    monkeypatch.setattr(inprocess, "replay_tools", lambda *_: replays)
    with contextlib.ExitStack() as stack:
        units = inprocess.start_units(plan, stack)
    sizes = plan.study.batch_sizes
    clients = sorted({1, *plan.study.mixed_concurrency_levels})
    assert len(units) == 2 + len(sizes) + len(clients)
    assert [t.asked for t in loops.values()] == [["1"], ["1"]]
    assert batch[("python-batched", "fp32")].asked == [f"{sizes[0]} 1"]  # once, not per size
    # a replay settles with a pass over its first few texts, not the whole workload
    assert replays[("python-batched", "fp32")].asked == ["1 1 1"]
    assert all(u.call_s == 0 for u in units)  # the settling call sizes nothing
    units[0].burst(0.01)
    assert loops[("python", "fp32", "seed")].asked[1:] == ["3", "10"]  # untimed, then timed


class _Replay:
    """A replay tool's stand-in: "C K [N]" -> K rows of a pass over N (or all) texts."""

    def __init__(self, texts: int, pass_us: int = 500_000) -> None:
        self.texts, self.pass_us, self.asked = texts, pass_us, []

    def ask(self, request: str) -> list[str]:
        self.asked.append(request)
        clients, passes, *count = request.split()
        texts = int(count[0]) if count else self.texts
        return [f"{clients},{i},{texts},{self.pass_us}" for i in range(int(passes))]


def test_a_replay_burst_is_one_pass_over_every_text_after_an_untimed_short_one() -> None:
    """A replay does what a service's burst does (every text of the workload once), so its
    first burst is preceded by a pass over a few texts only, and its items are the texts."""
    from servebench.measure.inprocess import InProcessUnit

    tool: Any = _Replay(texts=200)
    unit = InProcessUnit("replay", "python-batched", "fp32", "mixed", 50, tool, "python")
    rows, median_us = unit.burst(0.5)
    assert tool.asked == ["50 1 50", "50 1"]
    assert (len(rows), unit.items(rows), median_us) == (1, 200, 500_000)
    unit.burst(0.5)
    assert tool.asked[2:] == ["50 1"]
    assert (unit.id, unit.group) == ("replay:python-batched:50", "replay:python-batched")


def test_a_mixed_point_runs_the_replays_at_one_client_and_at_its_concurrency() -> None:
    from servebench import config, registry
    from servebench.measure import inprocess
    from servebench.measure.inprocess import InProcessUnit
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("quick"))
    tool: Any = _Replay(texts=10)
    units = [
        InProcessUnit("replay", "python-batched", "fp32", "mixed", c, tool, "python")
        for c in (1, 8, 50)
    ] + [InProcessUnit("batch", "python-batched", "fp32", "seed", 4, tool, "python")]
    known = registry.load_registry()
    services = [known["python-batched"], known["python"]]
    at = inprocess.units_at(plan, ("mixed", 50), services, units)
    assert [u.id for u in at] == ["replay:python-batched:1", "replay:python-batched:50"]
    alone = inprocess.units_at(plan, ("mixed", 1), services, units)
    assert [u.id for u in alone] == ["replay:python-batched:1"]
    assert inprocess.units_at(plan, ("mixed", 50), services[1:], units) == []


def test_at_the_mixed_point_each_service_is_held_against_the_replays() -> None:
    """No loop runs at the mixed workload: a service's efficiency is against the replay at
    one client of its inference kind's batched service, a batched service's queue efficiency
    against its own replay at the point's concurrency, and a replay's batching gain is its
    clients against one client."""
    from servebench.analysis import inprocess as ratios_of

    units = [
        ("python", "fp32"), ("python-batched", "fp32"), ("rust-native-release", "fp32"),
        ("python-tuned", "fp32"),
        ("replay:python-batched:1", "fp32"), ("replay:python-batched:50", "fp32"),
        ("replay:python-batched:1", "int8"),
    ]  # fmt: skip
    inference = {
        "python": "python", "python-batched": "python", "rust-native-release": "rust",
        "python-tuned": "python-tokenizers",
    }  # fmt: skip
    found = ratios_of.comparisons(units, inference, replayed={"python": "python-batched"})
    one, many = ("replay:python-batched:1", "fp32"), ("replay:python-batched:50", "fp32")
    assert {(c.kind, c.unit, c.versus) for c in found} == {
        ("efficiency", ("python", "fp32"), one),
        ("efficiency", ("python-batched", "fp32"), one),
        ("queue_efficiency", ("python-batched", "fp32"), many),
        ("queue_batching", many, one),
    }
    # where a loop is known too (a run's units), both are stated: each pairs at its points
    with_loop = ratios_of.comparisons(
        [*units, ("in-process:python", "fp32")], inference, replayed={"python": "python-batched"}
    )
    assert {(c.kind, c.unit, c.versus) for c in with_loop} - {
        (c.kind, c.unit, c.versus) for c in found
    } == {
        ("efficiency", ("python", "fp32"), ("in-process:python", "fp32")),
        ("efficiency", ("python-batched", "fp32"), ("in-process:python", "fp32")),
    }
    assert (
        ratios_of.label("replay:python-batched:50")
        == "python-batched replay, 50 clients (in process)"
    )


def test_a_replay_burst_is_its_texts_over_its_time() -> None:
    from servebench.analysis import inprocess as ratios_of

    rows = pd.DataFrame(
        {
            "service": ["python-batched"] * 3, "impl": ["python"] * 3, "variant": ["fp32"] * 3,
            "payload": ["mixed"] * 3, "concurrency": [50] * 3, "round": [0, 0, 1],
            "clients": [50, 50, 1], "iteration": [0, 1, 0], "texts": [200, 200, 200],
            "total_us": [1_000_000, 3_000_000, 2_000_000],
        }
    )  # fmt: skip
    bursts = ratios_of.replay_bursts(rows).set_index(["service", "round"])["rps"]
    assert bursts[("replay:python-batched:50", 0)] == pytest.approx(100.0)  # 400 in 4 s
    assert bursts[("replay:python-batched:1", 1)] == pytest.approx(100.0)
    assert ratios_of.replay_bursts(None).empty
