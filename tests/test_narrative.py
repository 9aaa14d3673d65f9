"""The report's short answer: written from the run's own numbers, never hard-coded."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd
import pytest
from rundata import OPTIONAL, make_run_dir, make_variant_run

from servebench import registry
from servebench.analysis import factors, narrative, ratios, tables
from servebench.rundir.reader import Run, load_run

pytestmark = pytest.mark.unit


def loaded(run_dir: Path) -> tuple[Run, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about optional inputs: not what is tested here
        run = load_run(run_dir)
        return run, tables.build_summary(run, write=False)


def test_answer_names_the_fastest_service_and_its_factor_over_the_baseline(
    tmp_path: Path,
) -> None:
    run, summary = loaded(make_variant_run(tmp_path))
    text = narrative.answer(run, summary)
    fp32 = summary[summary["variant"] == "fp32"].set_index("service")
    best = fp32["rps"].idxmax()
    assert f"**{fp32.at[best, 'label']}**" in text
    assert narrative.rate(fp32.at[best, "rps"]) + " req/s" in text
    # The headline is the paired ratio with its interval, not the ratio of medians.
    ratio, low, high = fp32.loc[best, ["ratio", "ratio_ci_low", "ratio_ci_high"]]
    assert f"{ratio:.2f}× [{low:.2f}–{high:.2f}] Python's" in text.splitlines()[1]
    assert f"c={run.seed_concurrency}" in text


def test_answer_gives_the_model_share_at_concurrency_1(tmp_path: Path) -> None:
    run, summary = loaded(make_variant_run(tmp_path))
    share = narrative.model_share(run, summary)
    assert len(share) == summary["service"].nunique()
    assert (share > 0).all()  # above 1 only when the loop was slower than a request (noise)
    text = narrative.answer(run, summary)
    assert f"{share.min():.0%} to {share.max():.0%}" in text


def test_answer_states_what_int8_changes_per_language_and_its_label_agreement(
    tmp_path: Path,
) -> None:
    run, summary = loaded(make_variant_run(tmp_path))
    text = narrative.answer(run, summary)
    seed_ratios = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    tidy = factors.throughput_factors(summary, run.facts, seed_ratios)
    loops = tidy[tidy["factor"] == factors.IN_PROCESS]
    assert "**Each model variant ÷ fp32**" in text and "**int8**: in process" in text
    assert len(loops) == len(registry.inference_kinds())  # one loop per inference kind
    for r in loops.itertuples(index=False):  # the loops' paired ratio, with its interval
        assert f"{r.inference} loop {ratios.formatted(r.ratio, r.ci_low, r.ci_high)}" in text
        assert math.isfinite(r.ci_low)
    for language in set(run.facts["language"]):
        assert f"{language} services" in text
    agreement = factors.faithfulness(run).set_index("variant").at["int8", "label_agreement"]
    assert f"{agreement:.1%}" in text


def test_answer_of_an_fp32_run_says_nothing_about_variants(tmp_path: Path) -> None:
    run, summary = loaded(make_run_dir(tmp_path, n=60, concurrencies=[1, 50]))
    text = narrative.answer(run, summary)
    assert "int8" not in text and "÷ fp32" not in text
    assert text.startswith("- **The language, same design**")
    assert text.splitlines()[1].startswith("- **Fastest at the seed point**")


def test_answer_leads_with_the_language_at_a_fixed_design(tmp_path: Path) -> None:
    """Unbatched release builds of another language ÷ their baseline, with intervals; plain
    words when an interval includes 1; a batched fastest service is called cross-design."""
    run, summary = loaded(make_variant_run(tmp_path))
    chosen = narrative.like_for_like(run, summary)
    assert len(chosen) and (chosen["variant"] == "fp32").all()
    for service in chosen["service"]:
        assert run.fact(service, "build") != "debug" and not run.fact(service, "batching")
        assert run.fact(service, "language") != run.fact(run.baseline(service), "language")
    first = narrative.answer(run, summary).splitlines()[0]
    assert first.startswith("- **The language, same design**")
    for r in chosen.itertuples(index=False):
        assert f"{r.ratio:.2f}× [{r.ratio_ci_low:.2f}–{r.ratio_ci_high:.2f}]" in first
    assert "no measurable difference" not in first
    one = chosen["service"].iloc[0]
    blurred = summary.copy()
    mine = (blurred["service"] == one) & (blurred["variant"] == "fp32")
    blurred.loc[mine, ["ratio", "ratio_ci_low", "ratio_ci_high"]] = [1.03, 0.97, 1.09]
    first = narrative.answer(run, blurred).splitlines()[0]
    assert f"{run.label(one)} ÷ Python 1.03× [0.97–1.09] (no measurable difference)" in first
    second = narrative.answer(run, summary).splitlines()[1]
    fp32 = summary[summary["variant"] == "fp32"].set_index("service")
    best = str(fp32["rps"].idxmax())
    assert ("cross-design" in second) == bool(run.fact(best, "batching"))


def test_answer_follows_the_numbers(tmp_path: Path) -> None:
    """Change the summary and the answer changes with it: nothing is hard-coded."""
    run, summary = loaded(make_variant_run(tmp_path))
    slow = summary.copy()
    first = slow.index[(slow["service"] == slow["service"].iloc[0]) & (slow["variant"] == "fp32")]
    slow.loc[first, "rps"] = slow["rps"].max() * 3  # the baseline is now the fastest by far
    text = narrative.answer(run, slow)
    assert f"**{slow.loc[first[0], 'label']}**" in text.splitlines()[1]


def test_answer_without_a_ceiling_skips_the_model_share(tmp_path: Path) -> None:
    optional = ("services", "parity", "stages", "openloop", "variants")
    run, summary = loaded(make_variant_run(tmp_path, optional=optional))
    text = narrative.answer(run, summary)
    assert "At concurrency 1" not in text
    assert "in process not measured" in text


def test_answer_flags_unstable_measurements_only_where_nothing_was_paired(
    tmp_path: Path,
) -> None:
    """Without a precision target the spread across rounds is all a reader has; a paired run
    states its intervals instead (its short bursts spread on a drifting host by design)."""
    optional = [name for name in OPTIONAL if name not in ("points", "drift")]
    run, summary = loaded(
        make_run_dir(tmp_path / "bare", n=60, concurrencies=[1, 50], optional=optional)
    )
    unstable = int(summary["unstable"].sum())
    assert unstable  # rundata makes one service's rounds spread
    flagged = f"{unstable} of {len(summary)} seed-point measurements spread over"
    assert flagged in narrative.answer(run, summary)
    paired_run, paired_summary = loaded(make_run_dir(tmp_path, n=60, concurrencies=[1, 50]))
    assert paired_summary["unstable"].sum() == unstable
    text = narrative.answer(paired_run, paired_summary)
    assert "spread over" not in text and "widest 95 % interval" in text


def test_answer_flags_what_missed_the_precision_target(tmp_path: Path) -> None:
    run, summary = loaded(make_run_dir(tmp_path, n=60, concurrencies=[1, 50]))
    text = narrative.answer(run, summary)
    missed = summary[summary["converged"] == False]  # noqa: E712 (NaN is neither)
    assert len(missed) > 0  # rundata slows one round of one service at the seed point
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    assert set(seed["kind"]) > {"baseline"}  # every kind of the point counts, not the summary's
    widest = max(
        (math.sqrt(h / lo) - 1) * 100
        for lo, h in zip(seed["ratio_ci_low"], seed["ratio_ci_high"], strict=True)
        if math.isfinite(lo) and math.isfinite(h)
    )
    assert f"the widest 95 % interval at the seed point is ±{widest:.1f} % (target ±3 %)" in text
    assert f"{len(missed)} of {len(summary)} seed-point units" in text
    short = run.points[~run.points["converged"]]
    assert f"{len(short)} of {len(run.points)} points" in text
    # A run without points.csv records no target reached: nothing to flag.
    optional = [name for name in OPTIONAL if name not in ("points", "drift")]
    bare, bare_summary = loaded(
        make_run_dir(tmp_path / "bare", n=60, concurrencies=[1, 50], optional=optional)
    )
    assert bare_summary["converged"].isna().all()
    assert "target" not in narrative.answer(bare, bare_summary)


def test_answer_is_as_long_on_a_noisy_run_as_on_a_calm_one(tmp_path: Path) -> None:
    """The report's layout (first figure on the first screen) must not depend on how noisy
    the run was: the same bullets, and a length that does not grow with the flagged units."""
    run, summary = loaded(make_variant_run(tmp_path))
    calm = summary.assign(unstable=False, converged=True)
    noisy = summary.assign(unstable=True, converged=False)
    run.points["converged"] = True
    calm_text = narrative.answer(run, calm)
    run.points["converged"] = False
    noisy_text = narrative.answer(run, noisy)
    assert len(noisy_text.splitlines()) == len(calm_text.splitlines())
    # Counts, not names: a few digits and one clause more, whatever the number of units.
    assert len(noisy_text) - len(calm_text) <= 160, noisy_text
    for label in summary["label"]:
        assert noisy_text.count(str(label)) == calm_text.count(str(label))
