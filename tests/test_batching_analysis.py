"""Batched services in the registry, the run files and the report's batching numbers
(synthetic runs built per docs/DATA.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from rundata import data_md_columns, make_run_dir

from servebench import plots, registry
from servebench.analysis import batching, factors, narrative, tables
from servebench.rundir.reader import load_run

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    return make_run_dir(
        root, n=60, payloads=["seed", "short"], concurrencies=[1, 50], variants=("fp32", "int8")
    )


def test_batched_services_name_their_twin_and_batch_ceiling() -> None:
    services = registry.load_registry()
    batched = {name: s for name, s in services.items() if s.batching}
    assert set(batched) == {"python-batched", "rust-native-batched"}
    for service in batched.values():
        assert service.twin in services and not services[service.twin].batching
        assert services[service.twin].inference == service.inference
        assert service.batch_ceiling
    assert all(not s.batch_ceiling for s in services.values() if not s.batching)


def test_the_registry_refuses_a_batched_service_without_its_batch_ceiling(tmp_path: Path) -> None:
    entry = yaml.safe_load(registry.REGISTRY_FILE.read_text())["services"]["python-batched"]
    broken = {**entry, "batch_ceiling": []}
    path = tmp_path / "registry.yaml"
    path.write_text(
        yaml.safe_dump(
            {"extends": str(registry.REGISTRY_FILE), "services": {"python-batched": broken}}
        )
    )
    with pytest.raises(registry.RegistryError, match="batch_ceiling"):
        registry.load_registry(path)
    path.write_text(
        yaml.safe_dump(
            {
                "extends": str(registry.REGISTRY_FILE),
                "services": {"python-batched": {**entry, "twin": "nope"}},
            }
        )
    )
    with pytest.raises(registry.RegistryError, match="twin 'nope' is not a service"):
        registry.load_registry(path)


def test_the_inference_kinds_are_those_with_a_ceiling(tmp_path: Path) -> None:
    # python-tuned tokenizes through the tokenizers binding: a loop of its own
    assert registry.inference_kinds() == ("python", "python-tokenizers", "rust")
    entry = yaml.safe_load(registry.REGISTRY_FILE.read_text())["services"]["python"]
    path = tmp_path / "registry.yaml"
    added = {**entry, "inference": "java", "ceiling": ["{python}", "-m", "java_ceiling"]}
    services = {"java": added}
    path.write_text(yaml.safe_dump({"extends": str(registry.REGISTRY_FILE), "services": services}))
    kinds = registry.inference_kinds(registry.load_registry(path))
    assert kinds == ("python", "python-tokenizers", "rust", "java")
    services = {"java": {**added, "ceiling": []}}
    path.write_text(yaml.safe_dump({"extends": str(registry.REGISTRY_FILE), "services": services}))
    with pytest.raises(registry.RegistryError, match="inference 'java' has no in-process ceiling"):
        registry.load_registry(path)


def test_batch_ceiling_file_as_data_md(run_dir: Path) -> None:
    frame = pd.read_csv(run_dir / "batch_ceiling.csv")
    assert list(frame.columns) == data_md_columns("batch_ceiling.csv")


def test_batch_ceiling_gain_is_over_the_same_path_at_batch_one(run_dir: Path) -> None:
    run = load_run(run_dir)
    table = batching.batch_ceiling(run)
    assert set(table["service"]) == {"python-batched", "rust-native-batched"}
    ones = table[table["batch_size"] == 1]
    assert (ones["gain"] == 1.0).all()
    for _, g in table.groupby(["service", "variant"]):
        g = g.sort_values("batch_size")
        # synthetic per-item cost falls with the batch: items/s rise monotonically
        assert g["items_per_s"].is_monotonic_increasing
        assert g["items_per_s"].iloc[-1] == pytest.approx(
            g["gain"].iloc[-1] * g["items_per_s"].iloc[0]
        )


def test_twin_table_pairs_each_batched_service_with_its_twin(run_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(run_dir)
        table = batching.twin_table(run)
    assert list(table.columns) == batching.TWIN_COLUMNS
    assert set(zip(table["service"], table["twin"], strict=True)) == {
        ("python-batched", "python"),
        ("rust-native-batched", "rust-native-release"),
    }
    # 2 services x 2 variants x 2 payloads x 2 concurrencies
    assert len(table) == 16
    # The paired ratio of the same rounds (ratios.csv), inside its interval; near the
    # ratio of the medians, which it replaces.
    paired = tables.ratios(run)
    paired = paired[paired["kind"] == "batching"].set_index(
        ["service", "variant", "payload", "concurrency"]
    )
    for r in table.itertuples(index=False):
        key = (r.service, r.variant, r.payload, r.concurrency)
        assert r.rps_ratio == paired.at[key, "ratio"]
        assert r.rps_ratio_ci_low <= r.rps_ratio <= r.rps_ratio_ci_high
        assert abs(r.rps_ratio / (r.rps / r.twin_rps) - 1) < 0.1
    # Only the c=1 stage timings carry batch sizes in a synthetic run (one request each).
    c1 = table[table["concurrency"] == 1]
    assert (c1.loc[c1["payload"] == "seed", "median_batch"] == 1).all()
    assert table.loc[table["concurrency"] == 50, "median_batch"].isna().all()
    assert table.loc[table["payload"] != "seed", "x_batch1_ceiling"].isna().all()
    assert table.loc[table["payload"] == "seed", "x_batch1_ceiling"].notna().all()


def test_batching_figures_are_drawn_only_for_runs_with_batched_services(
    run_dir: Path, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(run_dir)
        assert plots.draw(run, "batching") is not None
        assert plots.draw(run, "batch_ceiling") is not None
        plain = load_run(
            make_run_dir(
                tmp_path,
                n=40,
                services=["python", "rust-ffi-release"],
                payloads=["seed"],
                concurrencies=[1, 50],
            )
        )
        assert plots.draw(plain, "batching") is None
        assert plots.draw(plain, "batch_ceiling") is None
        assert batching.batched_services(plain) == []


def test_batching_is_a_factor_beside_language_and_variant(run_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(run_dir)
        summary = tables.build_summary(run, write=False)
    tidy = factors.throughput_factors(summary, run.facts)
    rows = tidy[tidy["factor"] == factors.BATCHING].set_index(["service", "variant"])
    assert set(rows.index) == {
        (s, v) for s in ("python-batched", "rust-native-batched") for v in ("fp32", "int8")
    }
    rps = summary.set_index(["service", "variant"])["rps"]
    assert rows.at[("python-batched", "int8"), "ratio"] == pytest.approx(
        rps[("python-batched", "int8")] / rps[("python", "int8")]
    )
    table = factors.factor_table(summary, run.facts)
    assert "batched ÷ twin · fp32" in table.columns
    assert table["batched ÷ twin · fp32"].notna().sum() == 2  # the two batched services
    text = narrative.answer(run, summary)
    assert "**Dynamic batching ÷ the same service unbatched**" in text
    assert "the batch-1 in-process ceiling" in text


def test_no_batching_factor_or_sentence_without_batched_services(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(
            make_run_dir(
                tmp_path,
                n=40,
                services=["python", "rust-ffi-release"],
                payloads=["seed"],
                concurrencies=[1, 50],
            )
        )
        summary = tables.build_summary(run, write=False)
    assert not any(c.startswith("batched") for c in factors.factor_table(summary, run.facts))
    assert "Dynamic batching" not in narrative.answer(run, summary)


# --- the runs' shape (loadtests.csv batch_*, the services' GET /stats) -------------------


def bursts(*rows: tuple[str, str, int, float, float, float, float]) -> pd.DataFrame:
    """loadtests.csv rows: service, payload, concurrency, then runs, rows, tokens, positions."""
    frame = pd.DataFrame(rows, columns=["service", "payload", "concurrency", *batching.RUN_COUNTS])
    return frame.assign(variant="fp32")


def test_run_shapes_sum_the_counts_of_a_points_bursts() -> None:
    nan = float("nan")
    frame = bursts(
        ("python-batched", "mixed", 16, 2, 6, 40, 50),
        ("python-batched", "mixed", 16, 3, 6, 60, 60),
        ("python-batched", "seed", 50, 4, 8, 80, 80),
        ("python", "mixed", 16, nan, nan, nan, nan),  # unbatched: no counts
        ("python", "seed", 1, nan, nan, nan, nan),  # a point with no batched burst
        ("rust-native-batched", "seed", 50, 0, 0, 0, 0),  # every run failed
    )
    shapes = batching.run_shapes(frame).set_index(["service", "payload", "concurrency"])
    assert list(batching.run_shapes(frame).columns) == batching.RUN_SHAPE_COLUMNS
    mixed = shapes.loc[("python-batched", "mixed", 16)]
    # Sums, not a mean of the bursts' ratios: 12 rows in 5 runs; 100 of 110 positions real.
    assert (mixed["bursts"], mixed["rows_per_run"]) == (2, pytest.approx(12 / 5))
    assert mixed["padding_share"] == pytest.approx(1 - 100 / 110)
    seed = shapes.loc[("python-batched", "seed", 50)]
    assert (seed["rows_per_run"], seed["padding_share"]) == (2.0, 0.0)
    assert "python" not in set(shapes.index.get_level_values("service"))
    failed = shapes.loc[("rust-native-batched", "seed", 50)]
    assert failed[["rows_per_run", "padding_share"]].isna().all()


def test_run_shapes_without_counts_are_empty() -> None:
    nan = float("nan")
    unbatched = bursts(("python", "seed", 50, nan, nan, nan, nan))
    assert batching.run_shapes(unbatched).empty
    older = unbatched.drop(columns=batching.RUN_COUNTS)  # a run written before the columns
    shapes = batching.run_shapes(older)
    assert shapes.empty and list(shapes.columns) == batching.RUN_SHAPE_COLUMNS


def test_twin_table_shows_rows_per_run_and_padding_at_every_point(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(
            make_run_dir(
                tmp_path,
                n=40,
                services=["python", "python-batched"],
                payloads=["seed"],
                concurrencies=[1, 50],
                mixed=[16],
            )
        )
        table = batching.twin_table(run).set_index(["payload", "concurrency"])
    loadtests = pd.read_csv(run.path / "loadtests.csv")
    assert (loadtests.loc[loadtests["service"] == "python", batching.RUN_COUNTS].isna()).all(
        axis=None
    )
    # rundata_files.batch_counts: runs of min(c, 8) rows, a quarter padding on mixed only;
    # the seed table's full burst counts at the seed point with the paired rounds'.
    seed = loadtests[(loadtests["service"] == "python-batched") & (loadtests["concurrency"] == 50)]
    assert seed["seed_table"].any() and (~seed["seed_table"]).any()
    at_seed = table.loc[("seed", 50)]
    assert at_seed["rows_per_run"] == pytest.approx(
        seed["batch_rows"].sum() / seed["batch_runs"].sum()
    )
    assert at_seed["padding_share"] == 0.0
    assert table.loc[("seed", 1), "rows_per_run"] == 1.0
    assert table.loc[("mixed", 16), "padding_share"] == pytest.approx(0.2)
