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


def test_sweep_points_are_request_counts_sized_to_the_service() -> None:
    from servebench.measure.plan import sweep_requests

    # long payload (~125 ms) at c=50: 3 rounds of 50, not a time limit that drops work
    assert sweep_requests(50, 0.125, 4.0, 3) == 150
    # short payload (~3 ms) at c=4: ~4 s of work, rounded up to a multiple of 4
    assert sweep_requests(4, 0.003, 4.0, 3) == 1336
    assert sweep_requests(16, 0.125, 4.0, 1) == 32
    assert sweep_requests(50, 0.0, 4.0, 0) == 50


def test_orders_rotate_every_service_and_variant_through_the_positions() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    def names(order: list) -> list[str]:
        return [unit.name for unit in order]

    def plan(repeats: int) -> Plan:
        return Plan.from_study(config.load_study("default", [f"repeats={repeats}"]))

    units = sorted(names(plan(1).units))
    assert len(units) == 7 * 2  # seven services, fp32 and int8
    assert {u.split("·")[1] for u in units} == {"fp32", "int8"}
    for repeats in (2, 3, 5, 11):
        orders = [names(order) for order in plan(repeats).orders()]
        assert len(orders) == repeats
        assert all(sorted(order) == units for order in orders)
        for unit in units:
            positions = [order.index(unit) for order in orders]
            # never the same slot twice while slots remain; every slot once repeats >= units
            assert len(set(positions)) == min(repeats, len(units)), (unit, positions)
        # The fresh phase: the base order reversed, without the seed-point-only units.
        debug = ("rust-ffi-debug·", "rust-native-debug·")
        fresh = [u for u in orders[0][::-1] if not u.startswith(debug)]
        assert names(plan(repeats).fresh_process_order()) == fresh
    assert [names(o) for o in plan(3).orders()] == [names(o) for o in plan(3).orders()]
    other_seed = config.load_study("default", ["shuffle_seed=1"])
    assert names(Plan.from_study(other_seed).orders()[0]) != names(plan(1).orders()[0])


def test_seed_point_only_services_get_the_seed_point_and_nothing_else() -> None:
    from servebench import config
    from servebench.measure.plan import Plan

    plan = Plan.from_study(config.load_study("default"))
    assert plan.study.seed_point_only == ["rust-ffi-debug", "rust-native-debug"]
    by_name = {unit.name: unit for unit in plan.units}
    debug, release = by_name["rust-ffi-debug·int8"], by_name["rust-ffi-release·int8"]
    assert plan.points(debug) == [("seed", 50)] and plan.unit_mixed_points(debug) == []
    assert len(plan.points(release)) == 16 and plan.unit_mixed_points(release) == [1, 16, 50]
    everyone = Plan.from_study(config.load_study("default", ["seed_point_only=[]"]))
    assert len(everyone.fresh_process_order()) == len(everyone.units) == 14
    with pytest.raises(config.ConfigError, match="seed_point_only=\\['nope'\\]: unknown service"):
        config.load_study("default", ["seed_point_only=[nope]"])


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
