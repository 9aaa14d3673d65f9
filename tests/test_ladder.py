"""The ladder from the seed's Python to its tuned stack (issue 19): the registry's facts, the
ratios the study states for it, how a run keeps its rungs apart, and ladder.csv, on a
synthetic run whose true ratios are known."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rundata import RUNGS, data_md_columns, make_run_dir, make_variant_run

from servebench import registry
from servebench.analysis import ladder, narrative, paired, ratios, tables
from servebench.plots import ladder as ladder_plot
from servebench.rundir import reader

pytestmark = pytest.mark.unit

#: The project's ladder, foot first (service/registry.yaml `step_from`).
LADDER = ["python", "ladder-uvloop", "ladder-tokenizers", "ladder-thin", "python-tuned"]


def load(run_dir: Path) -> reader.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reader.load_run(run_dir)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    run = load(make_variant_run(tmp_path_factory.mktemp("ladder"), n=80))
    tables.build_summary(run)
    return run


def test_the_registry_climbs_from_python_to_python_tuned_one_lever_at_a_time() -> None:
    known = registry.load_registry()
    climbed = ["python-tuned"]
    while known[climbed[-1]].step_from:
        climbed.append(known[climbed[-1]].step_from)
    assert climbed[::-1] == LADDER
    assert not known["python-tuned"].rung and all(known[s].rung for s in RUNGS)
    assert known["ladder-granian"].step_from == "python-tuned"  # uvicorn's alternative

    # Each step is the step before's program with one lever more (uvloop and httptools go
    # together): the same command up to the levers, whose flags differ by one or two.
    def levers(service: str) -> dict[str, str]:
        command = known[service].command
        start = command.index("{workers}") + 1
        return dict(zip(command[start::2], command[start + 1 :: 2], strict=True))

    for name in [*LADDER[1:], "ladder-granian"]:
        mine, before = known[name].command, known[known[name].step_from].command
        assert mine[: mine.index("{workers}")] == before[: before.index("{workers}")]
        changed = set(levers(name).items()) ^ set(levers(known[name].step_from).items())
        assert 1 <= len({flag for flag, _ in changed}) <= 2, (name, changed)
        assert known[name].folder == "service/python" and known[name].baseline == "python"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ladder-thin": {"step_from": "nope"}}, "step_from 'nope' is not a service"),
        ({"ladder-thin": {"step_from": ""}}, "a rung .* needs `step_from`"),
        ({"ladder-uvloop": {"step_from": "python-tuned"}}, "step_from goes round"),
    ],
)
def test_the_registry_refuses_a_broken_ladder(
    tmp_path: Path, change: dict[str, dict[str, str]], message: str
) -> None:
    entries = yaml.safe_load(registry.REGISTRY_FILE.read_text())["services"]
    services = {name: {**entries[name], **facts} for name, facts in change.items()}
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"extends": str(registry.REGISTRY_FILE), "services": services}))
    with pytest.raises(registry.RegistryError, match=message):
        registry.load_registry(path)


def test_steps_tuned_stacks_and_their_kinds_of_ratio() -> None:
    units = [(s, "fp32") for s in ["python", "ladder-uvloop", "python-tuned", "rust", "aa"]]
    units += [("python-tuned", "int8"), ("rust", "int8"), ("python", "int8")]
    baseline = {"ladder-uvloop": "python", "python-tuned": "python", "rust": "python"}
    baseline |= {"aa": "python", "python": ""}
    steps = {"ladder-uvloop": "python", "python-tuned": "ladder-uvloop"}
    found = {
        (c.kind, c.unit, c.versus)
        for c in paired.comparisons(
            units, baseline, {}, controls=["aa"], steps=steps, rungs=["ladder-uvloop"]
        )
    }
    assert found == {
        ("baseline", ("ladder-uvloop", "fp32"), ("python", "fp32")),  # its step: the same pair
        ("baseline", ("python-tuned", "fp32"), ("python", "fp32")),
        ("step", ("python-tuned", "fp32"), ("ladder-uvloop", "fp32")),
        ("baseline", ("rust", "fp32"), ("python", "fp32")),
        ("tuned", ("rust", "fp32"), ("python-tuned", "fp32")),
        ("control", ("aa", "fp32"), ("python", "fp32")),
        ("baseline", ("python-tuned", "int8"), ("python", "int8")),
        ("variant", ("python-tuned", "int8"), ("python-tuned", "fp32")),
        ("baseline", ("rust", "int8"), ("python", "int8")),
        ("tuned", ("rust", "int8"), ("python-tuned", "int8")),
        ("variant", ("rust", "int8"), ("rust", "fp32")),
        ("variant", ("python", "int8"), ("python", "fp32")),
    }
    # A rung is never a tuned stack: with python-tuned a rung, nothing is.
    rung_only = paired.comparisons(
        units, baseline, {}, steps=steps, rungs=["ladder-uvloop", "python-tuned"]
    )
    assert not any(c.kind == "tuned" for c in rung_only)


def test_a_run_keeps_its_rungs_out_of_every_table_but_the_ladder_and_the_ratios(
    run: reader.Run,
) -> None:
    assert run.rungs is not None and set(run.rungs["service"]) == set(RUNGS)
    assert not set(run.loadtests["service"]) & set(RUNGS)
    assert run.seed_table_bursts is not None
    assert not set(run.seed_table_bursts["service"]) & set(RUNGS)  # not in the seed's table
    summary = pd.read_csv(run.path / "summary.csv")
    assert not set(summary["service"]) & set(RUNGS) and "python-tuned" in set(summary["service"])
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    steps = seed[seed["kind"] == "step"]
    assert set(zip(steps["service"], steps["versus_service"], strict=True)) == {
        ("ladder-tokenizers", "ladder-uvloop"),
        ("ladder-thin", "ladder-tokenizers"),
        ("python-tuned", "ladder-thin"),
        ("ladder-granian", "python-tuned"),
    }
    assert not set(seed.loc[seed["kind"] == "efficiency", "service"]) & set(RUNGS)
    tuned = seed[seed["kind"] == "tuned"]
    assert set(tuned["versus_service"]) == {"python-tuned"}
    assert {"rust-native-release", "python-batched"} <= set(tuned["service"])
    assert not set(tuned["service"]) & {*RUNGS, "python", "python-tuned", "python-aa"}


def test_ladder_csv_holds_each_step_and_the_services_beside_it(run: reader.Run) -> None:
    table = ladder.ladder_table(run, write=True)
    on_disk = pd.read_csv(run.path / "ladder.csv")
    assert list(on_disk.columns) == data_md_columns("ladder.csv") == ladder.COLUMNS
    assert list(table["service"]) == [*LADDER, "ladder-granian", *ladder.beside(run)]
    assert ladder.beside(run) == ["rust-ffi-release", "rust-native-release"]
    assert ladder.tuned_stack(run, "python") == "python-tuned"
    rows = table.set_index("service")
    # Each step's ratio to the step before, recomputed from loadtests.csv's bursts.
    lt = pd.read_csv(run.path / "loadtests.csv")
    at = lt[(lt["payload"] == "seed") & (lt["concurrency"] == 50) & (lt["variant"] == "fp32")]
    at = at[~at["seed_table"]]
    for service in [*LADDER[1:], "ladder-granian"]:
        before = str(rows.at[service, "step_from"])
        mine = at[at["service"] == service].set_index("round")["rps"]
        theirs = at[at["service"] == before].set_index("round")["rps"]
        expected = math.exp(float(np.log(mine / theirs).mean()))
        assert rows.at[service, "step_ratio"] == pytest.approx(expected, rel=1e-6)
        assert rows.at[service, "step_ci_low"] < expected < rows.at[service, "step_ci_high"]
        assert rows.at[service, "rps"] == pytest.approx(mine.median())
    # The foot's own ratios are empty; a step's ratio to the foot is its baseline ratio.
    assert rows.loc["python", ["step_ratio", "foot_ratio", "tuned_ratio"]].isna().all()
    assert rows.at["ladder-uvloop", "foot_ratio"] == rows.at["ladder-uvloop", "step_ratio"]
    for service in ladder.beside(run):
        assert np.isfinite(rows.at[service, "tuned_ratio"]) and not rows.at[service, "step_from"]
    # The serving time is what the round trip spends outside tokenization and inference.
    stages = run.stages
    assert stages is not None
    for service in ["python", "python-tuned", "ladder-thin"]:
        mine = stages[
            (stages["service"] == service)
            & (stages["variant"] == "fp32")
            & (stages["payload"] == "seed")
        ]
        rest = mine["client_us"].median() - mine["tokenization_us"].median()
        rest -= mine["inference_us"].median()
        assert rows.at[service, "serving_ms"] == pytest.approx(rest / 1e3)


def test_the_share_of_a_lead_a_tuned_stack_recovers() -> None:
    assert ladder.recovered(2.0, 1.0) == pytest.approx(1.0)  # tuning closed the gap
    assert ladder.recovered(2.0, 2.0) == pytest.approx(0.0)  # it gained nothing
    assert ladder.recovered(4.0, 2.0) == pytest.approx(0.5)  # half, on the log scale
    assert ladder.recovered(1.5, 1.8) < 0  # tuning made Python slower
    assert math.isnan(ladder.recovered(0.9, 0.8))  # no lead to recover


def test_the_report_says_what_is_left_of_rusts_lead(run: reader.Run) -> None:
    text = ladder.answer(run)
    assert text is not None
    rows = ladder.ladder_table(run).set_index("service")
    native = rows.loc["rust-native-release"]
    left = ratios.formatted(*(native[c] for c in ["tuned_ratio", "tuned_ci_low", "tuned_ci_high"]))
    assert "Rust native release leads Python by" in text and f"Python tuned by {left}" in text
    summary = pd.read_csv(run.path / "summary.csv")
    language = narrative.language(run, summary)
    assert language is not None and f"÷ Python tuned {left}" in language
    lead = ladder.lead_table(run)
    assert len(lead) == 2 * len(run.variants_in_order())  # two services beside, each variant
    assert lead.columns[2] == "÷ Python [95 % CI]" and lead.columns[3] == "÷ Python tuned [95 % CI]"
    shown = ladder.shown(run, ladder.ladder_table(run))
    assert list(shown.index[:2]) == ["Python", run.label("ladder-uvloop")]
    figure = ladder_plot.draw_ladder(run)
    assert figure is not None
    texts = {t.get_text() for ax in figure.axes for t in ax.get_yticklabels()}
    assert {run.label(s) for s in [*LADDER, *ladder.beside(run)]} <= texts


def test_a_run_without_a_ladder_has_no_ladder_section(tmp_path: Path) -> None:
    run = load(
        make_run_dir(tmp_path, services=["python", "rust-native-release"], payloads=["seed"], n=60)
    )
    assert ladder.steps(run) == [] and ladder.ladder_table(run).empty
    assert ladder.answer(run) is None and ladder_plot.draw_ladder(run) is None
    assert ladder.lead_table(run).empty
