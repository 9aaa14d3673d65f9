"""The progress lines of a long run: step counts, elapsed time and the estimate of what is
left, on a fake clock; and the load test's steps as its plan lists them."""

from __future__ import annotations

import pytest

from servebench.progress import Progress, Step, approximate, duration, minutes

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def passes_of(units: list[str], passes: int) -> list[Step]:
    return [s for _ in range(passes) for s in [Step("ceiling"), *(Step("unit", u) for u in units)]]


def test_lines_count_steps_and_estimate_once_every_kind_to_come_was_timed() -> None:
    clock = FakeClock()
    progress = Progress(passes_of(["python·fp32", "rust·fp32"], 2), clock=clock)
    assert progress.total == 6
    first = progress.step("pass 1/2: ceiling")
    assert first == "[1/6 · 0s elapsed · estimating] pass 1/2: ceiling"
    clock.advance(10)
    # the units have not been timed yet: no guess from the ceiling's 10 s
    assert progress.step("pass 1/2: python·fp32").startswith("[2/6 · 10s elapsed · estimating]")
    clock.advance(120)
    assert progress.eta() is None
    line = progress.step("pass 1/2: rust·fp32")
    assert line == "[3/6 · 2m10s elapsed · ~7m left] pass 1/2: rust·fp32"
    # rust·fp32 (running; a unit: python's 120 s), the ceiling's 10 s, two more units
    assert progress.eta() == pytest.approx(120 + 10 + 120 + 120)
    clock.advance(60)
    assert progress.eta() == pytest.approx(60 + 10 + 120 + 120)  # the running step's remainder
    clock.advance(600)  # far beyond its prediction: the remainder is zero, never negative
    assert progress.eta() == pytest.approx(10 + 120 + 120)


def test_a_unit_is_predicted_by_its_own_earlier_passes_before_its_kind() -> None:
    clock = FakeClock()
    progress = Progress(passes_of(["slow", "fast"], 2), clock=clock)
    for label, seconds in [("c", 10), ("slow", 300), ("fast", 60), ("c", 20)]:
        progress.step(label)
        clock.advance(seconds)
    progress.end_step()
    # left: slow (its own 300 s) and fast (its own 60 s), not the unit mean of 180 s each
    assert progress.eta() == pytest.approx(300 + 60)
    progress.step("slow")
    clock.advance(100)
    assert progress.eta() == pytest.approx(200 + 60)


def test_a_prior_stands_in_until_its_kind_is_timed() -> None:
    clock = FakeClock()
    steps = [Step("unit", "a"), Step("fresh", "a"), Step("fresh", "b")]
    progress = Progress(steps, prior_s={"fresh": 90.0}, clock=clock)
    progress.step("a")
    clock.advance(50)
    progress.step("soak a")
    assert progress.eta() == pytest.approx(90 + 90)
    clock.advance(30)  # the fresh phase took 30 s, not the 90 s prior
    progress.step("soak b")
    assert progress.eta() == pytest.approx(30)
    clock.advance(30)
    assert progress.finish() == "[3/3 · 1m50s elapsed]"
    assert progress.eta() == pytest.approx(0)


def test_forecast_after_the_first_pass_and_too_many_steps_refused() -> None:
    clock = FakeClock()
    progress = Progress(passes_of(["a"], 3), clock=clock)
    assert progress.forecast() == "6 steps left; no estimate yet"
    progress.step("ceiling")
    clock.advance(30)
    progress.step("a")
    clock.advance(270)
    progress.end_step()
    assert progress.forecast() == "estimate: about 10 minutes left (about 15 minutes in all)"
    assert [minutes(s) for s in (59, 60, 89, 91)] == [
        "under a minute",
        "about 1 minute",
        "about 1 minute",
        "about 2 minutes",
    ]
    for label in ["c", "a", "c", "a"]:
        progress.step(label)
    with pytest.raises(RuntimeError, match="all 6 planned steps"):
        progress.step("one too many")


@pytest.mark.parametrize(
    ("seconds", "exact", "rough"),
    [
        (0, "0s", "~0s"),
        (44.6, "45s", "~50s"),
        (250, "4m10s", "~5m"),
        (3600, "1h00m", "~1h00m"),
        (3725, "1h02m", "~1h03m"),
    ],
)
def test_durations_read_at_a_glance(seconds: float, exact: str, rough: str) -> None:
    assert duration(seconds) == exact
    assert approximate(seconds) == rough


def test_the_load_test_plan_lists_starts_points_ceilings_then_the_fresh_phases() -> None:
    from servebench import config
    from servebench.measure.loadtest import plan_progress
    from servebench.measure.openloop import PAUSE_S
    from servebench.measure.plan import Plan

    def progress(*overrides: str) -> Progress:
        plan = Plan.from_study(config.load_study("quick", list(overrides)))
        return plan_progress(plan, plan.soak_order())

    measured = progress()
    variants = len(config.load_study("quick").variants)
    # six services x every variant; the two debug builds, the A/A control and the ladder's
    # four rungs, fp32 alone
    rungs = 4
    units = 6 * variants + 3 + rungs
    # quick measures rust-ffi-debug and the rungs at the seed point only; the soak is fp32's,
    # for every service but those and the control; the open loop the configuration's units
    soaked = 8 - 1
    study = config.load_study("quick")
    searched = len(study.openloop_services) * len(study.openloop_variants)
    points = 1 + 2 + 2  # quick: the seed point, seed c=1, long c=1, mixed c=1 and c=50
    assert measured.total == 1 + units + points + searched + soaked
    kinds = [s.kind for s in measured.steps]
    assert kinds[0] == "in-process"  # the loops and batch paths, loaded before the units
    starts = sorted(kinds[1 : 1 + units])
    assert starts == ["start seed unit"] * (1 + rungs) + ["start unit"] * (units - 1 - rungs)
    assert kinds[1 + units : 1 + units + points] == ["seed point"] + ["point"] * (points - 1)
    assert [s.kind for s in measured.steps[-soaked - searched :]] == (
        ["open loop"] * searched + ["soak"] * soaked
    )
    # quick: 4 s soak, at most 4 open-loop attacks of 1.5 s and a pause each; a point's budget
    # 20 s; the seed point's 20 s and its table's round: every unit x hey -n 200 at ~300 req/s
    assert measured.prior_s == {
        "open loop": pytest.approx(4 * (1.5 + PAUSE_S)),
        "soak": 4,
        "point": 20,
        "seed point": pytest.approx(20 + (units - rungs) * 200 / 300),  # no rung in the table
    }
    assert progress("soak_s=0", "openloop=false").total == 1 + units + points
    assert progress("openloop=false").total == 1 + units + points + soaked
