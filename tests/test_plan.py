"""Pure parts of the pipeline and the plan: run-directory moves, notebook parameters,
sweep sizing and the service orders."""

from __future__ import annotations

from pathlib import Path

import pytest

from servebench import pipeline

pytestmark = pytest.mark.unit


def test_latest_is_swapped_atomically(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pipeline.update_latest(tmp_path / "a")
    pipeline.update_latest(tmp_path / "b")
    assert (tmp_path / "latest").resolve() == (tmp_path / "b").resolve()


def test_publish_figures_replaces_older_copies(tmp_path: Path) -> None:
    run_dir, target = tmp_path / "run", tmp_path / "figures"
    (run_dir / "figures").mkdir(parents=True)
    target.mkdir()
    (run_dir / "figures" / "rps_bars.png").write_bytes(b"new")
    (run_dir / "figures" / "notes.txt").write_text("not a figure")
    (target / "rps_bars.png").write_bytes(b"old")
    copied = pipeline.publish_figures(run_dir, target)
    assert copied == [target / "rps_bars.png"]
    assert (target / "rps_bars.png").read_bytes() == b"new"
    assert not (target / "notes.txt").exists()


def test_notebooks_get_only_the_run_and_its_config() -> None:
    assert pipeline.notebook_parameters("03_report.ipynb", Path("/r")) == {"run_dir": "/r"}
    for name in ("01_export_model.ipynb", "02_load_test.ipynb"):
        parameters = pipeline.notebook_parameters(name, Path("/r"))
        assert parameters == {"config": "/r/config.yaml", "run_dir": "/r"}


def test_paired_bursts_are_request_counts_sized_to_the_service() -> None:
    from servebench.measure.plan import burst_requests

    # long payload (~125 ms) at c=50: 3 requests per client, not a time limit that drops work
    assert burst_requests(50, 0.125, 4.0, 3) == 150
    # short payload (~3 ms) at c=4: ~4 s of work, rounded up to a multiple of 4
    assert burst_requests(4, 0.003, 4.0, 3) == 1336
    assert burst_requests(16, 0.125, 4.0, 1) == 32
    assert burst_requests(50, 0.0, 4.0, 0) == 50


def test_units_start_in_a_seeded_shuffle_and_the_fresh_phase_reverses_it() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    def names(order: list) -> list[str]:
        return [unit.name for unit in order]

    plan = Plan.from_study(config.load_study("default"))
    units = sorted(names(plan.units))
    variants = plan.study.variants
    assert variants == ["fp32", "int8", "int8-static"]
    # six services x every variant; the two debug builds, the A/A control and the ladder's
    # four rungs: fp32
    assert len(units) == 6 * len(variants) + 3 + 4
    assert {u.split("·")[1] for u in units} == set(variants)
    assert "python-aa·fp32" in units and "python-aa·int8" not in units
    assert "ladder-thin·fp32" in units and "ladder-thin·int8" not in units
    start = names(plan.start_order())
    assert sorted(start) == units and start != names(plan.units)
    assert start == names(Plan.from_study(config.load_study("default")).start_order())
    # No soak or open loop for the debug builds and the rungs (seed point only) or the A/A
    # control; the soak fp32's alone for the others, the open loop the variants and services
    # the configuration names.
    skipped = ("rust-ffi-debug·", "rust-native-debug·", "python-aa·", "ladder-")
    soaked = names(plan.soak_order())
    assert soaked == [u for u in start[::-1] if not u.startswith(skipped) and u.endswith("·fp32")]
    searched = names(plan.openloop_order())
    study = plan.study
    wanted = {f"{s}·{v}" for s in study.openloop_services for v in study.openloop_variants}
    assert searched == [u for u in start[::-1] if u in wanted] and set(searched) == wanted
    other_seed = config.load_study("default", ["shuffle_seed=1"])
    assert names(Plan.from_study(other_seed).start_order()) != start


def test_points_cross_the_seed_point_and_put_it_first() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(
        config.load_study(
            "default",
            [
                "concurrency_levels=[1,16]",
                "payloads=[seed,long]",
                "payload_levels=[4]",
                "mixed_concurrency_levels=[1,50]",
            ],
        )
    )
    assert plan.points() == [("seed", 1), ("seed", 16), ("seed", 50), ("long", 4)]
    assert plan.all_points() == [
        ("seed", 50), ("seed", 1), ("seed", 16), ("long", 4), ("mixed", 1), ("mixed", 50),
    ]  # fmt: skip
    everyone = plan.units_at(("seed", 50))
    variants = len(plan.study.variants)
    assert len(everyone) == 6 * variants + 3 + 4  # debug, A/A control and the rungs: fp32
    swept = {u.name for u in plan.units_at(("long", 4))}
    assert len(swept) == 6 * variants + 1 and not any("debug" in name for name in swept)
    assert not any(name.startswith("ladder-") for name in swept)  # a rung: the seed point
    assert "python-aa·fp32" in swept  # the noise floor at every point


def test_only_the_seed_point_opens_with_the_seed_table_and_has_its_own_target() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default", ["seed_table_runs=2"]))
    assert plan.seed_table_rounds(("seed", 50)) == 2
    assert plan.seed_table_rounds(("seed", 1)) == plan.seed_table_rounds(("mixed", 50)) == 0
    study = plan.study
    assert plan.precision_target(("seed", 50)) == (
        study.target_ci_pct,
        study.seed_point_budget_s,
    )
    assert plan.precision_target(("long", 1)) == (study.sweep_target_ci_pct, study.point_budget_s)
    # Every paired burst, the seed point's too, is ~burst_s of work at the c=1 latency, in
    # whole requests per client (0.5 s at 4 ms: 125, so 150 at c=50).
    assert study.burst_s == 0.5
    assert plan.hey_requests(50, 0.004) == 150
    assert plan.hey_requests(1, 0.004) == 125


def test_seed_point_only_services_get_the_seed_point_and_nothing_else() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(
        config.load_study("default", ["base_variant_only=[]", "mixed_services=[]"])
    )
    assert plan.study.seed_point_only == ["rust-ffi-debug", "rust-native-debug"]
    by_name = {unit.name: unit for unit in plan.units}
    debug, release = by_name["rust-ffi-debug·int8"], by_name["rust-ffi-release·int8"]
    assert plan.points(debug) == [("seed", 50)] and len(plan.points(release)) == 3
    mixed = [p for p in plan.all_points() if p[0] == "mixed"]
    assert [c for _, c in mixed] == plan.study.mixed_concurrency_levels
    for point in mixed:
        assert release in plan.units_at(point) and debug not in plan.units_at(point)
    everyone = Plan.from_study(
        config.load_study(
            "default",
            [
                "seed_point_only=[]",
                "base_variant_only=[]",
                f"soak_variants={VARIANTS}",
                f"openloop_variants={VARIANTS}",
                "openloop_services=[]",
            ],
        )
    )
    # all but the control and the rungs (a rung's measure is the seed point's, whatever the
    # configuration says)
    assert len(everyone.soak_order()) == len(everyone.units) - 1 - 4
    assert everyone.openloop_order() == everyone.soak_order()
    assert len(everyone.units) - 1 - 4 == 8 * len(everyone.study.variants)
    with pytest.raises(config.ConfigError, match="seed_point_only=\\['nope'\\]: unknown service"):
        config.load_study("default", ["seed_point_only=[nope]"])


VARIANTS = "[fp32,int8,int8-static]"


def test_base_variant_only_services_and_the_soak_get_fp32_alone() -> None:
    """The default's budget (configs/default.yaml): the debug builds are there for the seed's
    fp32 table, and the soak and open loop run once per service, at fp32."""
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default"))
    variants = {u.name.split("·")[0]: set() for u in plan.units}
    for unit in plan.units:
        variants[unit.service.name].add(unit.variant)
    for name in plan.study.base_variant_only:
        assert variants[name] == {"fp32"}
    assert variants["rust-ffi-release"] == set(plan.study.variants)
    fresh = plan.soak_order()
    assert fresh and {u.variant for u in fresh} == {"fp32"}
    swept = [
        s
        for s in plan.services
        if not s.control and not s.rung and s.name not in plan.study.seed_point_only
    ]
    assert sorted(u.service.name for u in fresh) == sorted(s.name for s in swept)
    with pytest.raises(config.ConfigError, match="base_variant_only=\\['nope'\\]: unknown"):
        config.load_study("default", ["base_variant_only=[nope]"])
    for key in ("soak_variants", "openloop_variants"):
        with pytest.raises(config.ConfigError, match=f"{key}=\\['fp16'\\]: unknown"):
            config.load_study("default", [f"{key}=[fp16]"])
    with pytest.raises(config.ConfigError, match="openloop_services=\\['nope'\\]: unknown"):
        config.load_study("default", ["openloop_services=[nope]"])


def test_each_variant_is_served_from_its_own_directory() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default", ["variants=[fp32,int8]"]))
    dirs = {unit.variant: unit.model_dir for unit in plan.units}
    assert dirs["fp32"].name == "minilm-sentiment"
    assert dirs["int8"].name == "minilm-sentiment.int8"
    assert {tuple(unit.key()) for unit in plan.units} == {("service", "variant")}


def test_the_measuring_process_does_not_import_torch_or_optimum() -> None:
    import subprocess
    import sys

    script = (
        "import sys; import servebench.measure.loadtest, servebench.pipeline, "
        "servebench.measure.verify;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'optimum'}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_registry_refuses_an_a_a_control_that_repeats_nothing(tmp_path: Path) -> None:
    import yaml

    from servebench import registry

    entry = yaml.safe_load(registry.REGISTRY_FILE.read_text())["services"]["python"]
    control = {**entry, "control": True, "ceiling": [], "baseline": ""}
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump({"extends": str(registry.REGISTRY_FILE), "services": {"aa": control}})
    )
    with pytest.raises(registry.RegistryError, match=r"A/A control .* needs a `baseline`"):
        registry.load_registry(path)
    control["baseline"] = "python"
    path.write_text(
        yaml.safe_dump({"extends": str(registry.REGISTRY_FILE), "services": {"aa": control}})
    )
    assert registry.load_registry(path)["aa"].control


def test_the_mixed_workload_measures_the_units_of_mixed_services_only() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default"))
    named = ["python", "rust-native-release", "python-batched", "rust-native-batched", "python-aa"]
    assert plan.study.mixed_services == named
    mixed = {u.service.name for u in plan.units_at(("mixed", 50))}
    assert mixed == set(named)
    # the other points keep every unit measured beyond the seed point
    assert "rust-ffi-release" in {u.service.name for u in plan.units_at(("long", 1))}
    assert "python-tuned" in {u.service.name for u in plan.units_at(("seed", 1))}
    # a name the registry does not know is refused
    with pytest.raises(config.ConfigError, match="mixed_services"):
        config.load_study("default", ["mixed_services=[pyhton]"])
