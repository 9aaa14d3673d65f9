"""Real variants made with optimum: each one served by the services' Classifier like fp32,
cached, rebuilt when what made it changes, refused or failed cleanly, and judged against
fp32 (failing closed). Exports go to temporary directories, never data/models/."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from servebench import cli
from servebench.models import (
    DISTILBERT_SHAPE,
    MINILM_SENTIMENT,
    REFERENCE_SENTENCES,
    variant_build,
)
from servebench.models import sentiment_data as sd
from servebench.models.faithfulness import (
    INVARIANCE_TOLERANCE,
    check_agreement,
    measure_faithfulness,
)
from servebench.models.isa import detect_isa
from servebench.models.serving_info import EXPORT_FILE, SERVING_FILE
from servebench.models.variant_build import export_variants
from servebench.models.variants import CANDIDATES, VariantError, VariantResult
from servekit.inference import Classifier

pytestmark = pytest.mark.system

ALL = ["fp32", "optimized", "int8", "int8-static"]
CPU = detect_isa()
needs_int8 = pytest.mark.skipif(CPU.isa is None, reason=f"no int8 preset here: {CPU.reason}")


def labels(model_dir: str | Path) -> list[str]:
    classifier = Classifier(model_dir, threads=1)
    return [classifier.classify(s.text).label for s in REFERENCE_SENTENCES]


def inodes(results: dict[str, VariantResult]) -> dict[str, tuple[int, int]]:
    files = {name: Path(r.output_dir) / "model.onnx" for name, r in results.items()}
    return {name: (f.stat().st_ino, f.stat().st_mtime_ns) for name, f in files.items()}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VariantResult]:
    if CPU.isa is None:
        pytest.skip(f"no int8 preset here: {CPU.reason}")
    out = tmp_path_factory.mktemp("variants") / MINILM_SENTIMENT
    return export_variants(MINILM_SENTIMENT, ALL, opset=17, output_dir=out)


def test_every_variant_is_served_like_fp32(made: dict[str, VariantResult]) -> None:
    assert list(made) == ALL
    fp32_dir = Path(made["fp32"].output_dir)
    expected = labels(fp32_dir)
    for name in ALL[1:]:
        directory = Path(made[name].output_dir)
        assert directory == fp32_dir.with_name(f"{fp32_dir.name}.{name}")
        same = sum(a == b for a, b in zip(labels(directory), expected, strict=True))
        assert same >= 0.9 * len(REFERENCE_SENTENCES), (name, same)
        # The same tokenizer and config, byte for byte, and serving.json from the same code.
        for role in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "config.json"):
            assert (directory / role).read_bytes() == (fp32_dir / role).read_bytes(), role
        serving = json.loads((directory / SERVING_FILE).read_text())
        assert serving == json.loads((fp32_dir / SERVING_FILE).read_text())
        assert not (directory / "parity.json").exists()  # fp32's PyTorch parity is fp32's
        assert not list(directory.glob("model_*.onnx"))  # optimum's names are gone
        record = json.loads((directory / EXPORT_FILE).read_text())
        assert record["variant"] == name and record["fp32_dir"] == str(fp32_dir)
        assert set(record["versions"]) >= {"optimum", "onnxruntime"}


def test_int8_record_names_the_cpu(made: dict[str, VariantResult]) -> None:
    int8 = made["int8"]
    assert int8.onnx_bytes < made["fp32"].onnx_bytes / 3
    record = json.loads((Path(int8.output_dir) / EXPORT_FILE).read_text())
    assert record["isa"] == CPU.isa == record["recipe"]["preset"]
    assert record["cpu"]["deciding_flags"] == CPU.deciding_flags
    assert record["cpu"]["reduce_range"] == record["quantization"]["reduce_range"]
    quantization = record["quantization"]
    assert quantization["per_channel"] and not quantization["is_static"]
    assert (
        quantization["mode"] == "IntegerOps" and "MatMul" in quantization["operators_to_quantize"]
    )
    assert "plain fp32 export" in record["decision"]


def test_int8_static_record_says_how_its_recipe_was_chosen(
    made: dict[str, VariantResult],
) -> None:
    static = made["int8-static"]
    record = json.loads((Path(static.output_dir) / EXPORT_FILE).read_text())
    quantization = record["quantization"]
    assert quantization["is_static"] and quantization["per_channel"]
    assert quantization["format"] == "QDQ" and quantization["operators_to_quantize"] == ["MatMul"]
    assert record["isa"] == CPU.isa and "batch-mates" in record["decision"]
    selection = record["selection"]
    examples = sd.load_sentences()
    calibration, evaluation = sd.calibration_split(examples)
    assert selection["calibration_sentences"] == len(calibration) > 50
    assert selection["evaluation_sentences"] == len(evaluation) == len(examples) - len(calibration)
    assert not any(sd.is_held_out(e.text) for e in calibration)  # judged on what it never saw
    candidates = selection["candidates"]
    assert [c["name"] for c in candidates] == [c.name for c in CANDIDATES]
    # The rule it states: most agreeing on the selection sentences, then the least drift.
    best = max(
        candidates, key=lambda c: (c["selection_agreeing"], -c["selection_mean_abs_score_diff"])
    )
    assert selection["chosen"] == best["name"]
    for c in candidates:
        assert 0 < c["selection_agreeing"] <= selection["selection_sentences"]
        assert c["batch1_items_per_s"] > 0
    excluded = {c["name"]: c["attention_matmuls"] for c in candidates}
    assert (
        quantization["nodes_to_exclude"] == []
        if excluded[best["name"]]
        else quantization["nodes_to_exclude"]
    )


def test_optimized_record(made: dict[str, VariantResult]) -> None:
    optimized = made["optimized"]
    assert optimized.isa is None and optimized.quantization is None
    assert optimized.optimization is not None
    assert optimized.optimization["optimization_level"] == 2
    assert not optimized.optimization["enable_gelu_approximation"]  # O2, not O3
    assert optimized.fused_operators.get("Attention", 0) > 0


def test_unchanged_variants_are_reused(made: dict[str, VariantResult]) -> None:
    before = inodes(made)
    again = export_variants(MINILM_SENTIMENT, ALL, output_dir=made["fp32"].output_dir)
    assert all(r.skipped for r in again.values())
    assert inodes(again) == before


def test_faithful_to_fp32(made: dict[str, VariantResult]) -> None:
    faithful = measure_faithfulness(made)
    evaluation = sd.calibration_split(sd.load_sentences())[1]
    for name, f in faithful.items():
        assert f.sentences == len(evaluation) and f.held_out_sentences >= 50
        assert f.label_agreement >= 0.99, (name, f.disagreements)
        assert f.held_out_accuracy is not None and f.fp32_held_out_accuracy is not None
        assert f.held_out_accuracy >= f.fp32_held_out_accuracy - 0.05
        check_agreement(f, 0.99)
    assert faithful["fp32"].max_abs_score_diff == 0.0
    assert faithful["optimized"].max_abs_score_diff < 1e-4
    assert 0 < faithful["int8"].max_abs_score_diff < 0.5
    assert 0 < faithful["int8-static"].max_abs_score_diff <= 1  # a flipped label moves far


def test_batch_invariance_tells_dynamic_from_static(made: dict[str, VariantResult]) -> None:
    """The measurement really measures: dynamic int8's per-batch activation scale moves a
    row with its batch-mates; static int8 and fp32 rows do not move."""
    faithful = measure_faithfulness(made)
    assert faithful["int8"].batch_max_abs_diff > 100 * INVARIANCE_TOLERANCE
    assert not faithful["int8"].batch_invariant
    for name in ("fp32", "optimized", "int8-static"):
        assert faithful[name].batch_max_abs_diff <= INVARIANCE_TOLERANCE, name
        assert faithful[name].batch_invariant and faithful[name].batch_label_flips == 0


def test_broken_variant_fails_closed(made: dict[str, VariantResult], tmp_path: Path) -> None:
    """A variant answering with swapped labels is refused, not served."""
    broken = tmp_path / "broken.int8"
    shutil.copytree(made["int8"].output_dir, broken)
    serving = json.loads((broken / SERVING_FILE).read_text())
    serving["labels"] = serving["labels"][::-1]
    (broken / SERVING_FILE).write_text(json.dumps(serving))
    variants = {"fp32": made["fp32"], "int8": replace(made["int8"], output_dir=str(broken))}
    faithful = measure_faithfulness(variants)
    assert faithful["int8"].label_agreement < 0.1
    with pytest.raises(VariantError, match=r"variant 'int8' gives fp32's label on \d"):
        check_agreement(faithful["int8"], 0.99)


def test_cli_export_reuses_and_checks(made: dict[str, VariantResult], capfd) -> None:
    out = made["fp32"].output_dir
    argv = ["export", "--model-id", MINILM_SENTIMENT, "--output-dir", out]
    assert cli.main([*argv, "--variants", "fp32,int8"]) == 0
    err = capfd.readouterr().err
    assert "int8:" in err and "(reused)" in err and "label agreement" in err
    assert cli.main([*argv, "--variants", "fp32,fp16"]) == 2
    assert "variant 'fp16': unknown" in capfd.readouterr().err


@needs_int8
def test_rebuilt_when_the_recipe_changes(tmp_path: Path) -> None:
    out = tmp_path / MINILM_SENTIMENT
    before = inodes(export_variants(MINILM_SENTIMENT, ["int8"], output_dir=out))
    other = "avx2" if CPU.isa != "avx2" else "avx512"
    second = export_variants(
        MINILM_SENTIMENT, ["int8"], output_dir=out, cpu=replace(CPU, isa=other, reduce_range=True)
    )
    assert not second["int8"].skipped and second["int8"].recipe["preset"] == other
    assert second["int8"].quantization and second["int8"].quantization["reduce_range"]
    after = inodes(second)
    assert after["int8"] != before["int8"] and after["fp32"] == before["fp32"]
    # A moved tree is reused where it now is, not where its records say it was made.
    moved = tmp_path / "moved" / MINILM_SENTIMENT
    moved.parent.mkdir()
    for made in tmp_path.glob(f"{MINILM_SENTIMENT}*"):  # fp32 and its variants beside it
        made.rename(moved.parent / made.name)
    again = export_variants(
        MINILM_SENTIMENT, ["int8"], output_dir=moved, cpu=replace(CPU, isa=other, reduce_range=True)
    )
    assert again["fp32"].skipped and again["int8"].skipped
    assert again["fp32"].output_dir == str(moved) and again["int8"].fp32_dir == str(moved)
    assert Path(again["int8"].output_dir).parent == moved.parent


def test_refusals_and_failures_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / MINILM_SENTIMENT
    no_int8 = replace(CPU, isa=None, reason="x86_64 CPU without AVX2+FMA")
    with pytest.raises(VariantError, match="variant 'int8' cannot be made on this CPU"):
        export_variants(MINILM_SENTIMENT, ["optimized", "int8"], output_dir=out, cpu=no_int8)
    assert not list(tmp_path.iterdir())  # refused before anything, even fp32, is exported

    def half_then_fail(variant: str, chosen: dict, fp32_dir: Path, scratch: Path) -> None:
        (scratch / ".optimum").mkdir(parents=True)
        (scratch / ".optimum" / "model_optimized.onnx").write_bytes(b"half a graph")
        raise RuntimeError("optimizer crashed\nsecond line")

    monkeypatch.setattr(variant_build, "_make", half_then_fail)
    with pytest.raises(VariantError, match=r"'optimized' .*: RuntimeError: optimizer crashed$"):
        export_variants(MINILM_SENTIMENT, ["optimized"], output_dir=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MINILM_SENTIMENT]


@needs_int8
def test_distilbert_shape_accuracy_is_meaningless(tmp_path: Path) -> None:
    made = export_variants(DISTILBERT_SHAPE, ["int8"], output_dir=tmp_path / DISTILBERT_SHAPE)
    assert made["int8"].note and "meaningless" in made["int8"].note
    faithful = measure_faithfulness(made)
    for f in faithful.values():
        assert f.held_out_accuracy is None and f.fp32_held_out_accuracy is None
        assert "meaningless" in f.accuracy_note
    assert faithful["int8"].sentences >= 200
    assert labels(made["int8"].output_dir)  # the services' loader takes it
