"""Model variants without exporting: ISA detection on sample /proc/cpuinfo texts, the
recipes and fingerprints, the refusals, and the agreement check on synthetic answers.
(tests/test_variants.py makes real variants.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from servebench import paths
from servebench.models import sentiment_data as sd
from servebench.models.faithfulness import (
    CSV_COLUMNS,
    MAX_ACCURACY_DROP,
    Answers,
    Faithfulness,
    accuracy_note,
    allowed_drop,
    check_agreement,
    compare,
    variants_frame,
)
from servebench.models.isa import CpuIsa, cpu_flags, detect_isa
from servebench.models.variants import (
    VariantError,
    VariantResult,
    ordered,
    recipe,
    variant_dir,
    variant_fingerprint,
)

pytestmark = pytest.mark.unit

_BASE_X86 = "fpu vme sse sse2 ssse3 sse4_1 sse4_2 popcnt aes xsave avx f16c"
_SKYLAKE = f"{_BASE_X86} avx2 fma bmi2 avx512f avx512dq avx512cd avx512bw avx512vl"


def cpuinfo(flags: str, model: str = "Some CPU", key: str = "flags") -> str:
    """Two processors, as the kernel prints them (the first one's flags decide)."""
    block = f"processor\t: {{n}}\nmodel name\t: {model}\n{key}\t\t: {flags}\n"
    return "\n".join(block.format(n=n) for n in range(2))


@pytest.mark.parametrize(
    ("flags", "isa", "reduce_range"),
    [
        (f"{_SKYLAKE} avx512_vnni avx_vnni amx_int8", "avx512_vnni", False),  # Sapphire Rapids
        (f"{_SKYLAKE} avx512_vnni", "avx512_vnni", False),  # Cascade Lake, Zen 4
        (_SKYLAKE, "avx512", True),  # Skylake-SP: no VNNI, 7-bit weights
        (f"{_BASE_X86} avx2 fma", "avx2", True),  # Haswell, Zen 2
        (f"{_BASE_X86} avx2 fma avx_vnni", "avx2", False),  # Alder Lake: AVX-VNNI, no AVX-512
        (f"{_BASE_X86} avx2 fma avx512f avx512cd", "avx2", True),  # Knights Landing: no BW
        (f"{_BASE_X86} avx2", None, False),  # AVX2 without FMA: MLAS has no AVX2 kernel
        (_BASE_X86, None, False),  # Sandy Bridge
    ],
)
def test_x86_isa_detection(flags: str, isa: str | None, reduce_range: bool) -> None:
    detected = detect_isa(cpuinfo(flags, "Xeon"), "x86_64")
    assert (detected.isa, detected.reduce_range) == (isa, reduce_range)
    assert detected.cpu_model == "Xeon" and detected.machine == "x86_64"
    assert set(detected.deciding_flags) <= cpu_flags(cpuinfo(flags))
    if isa is None:
        assert detected.deciding_flags == [] and "AVX2" in detected.reason
    else:
        assert isa.split("_")[0] in " ".join(detected.deciding_flags)


def test_arm_and_other_machines() -> None:
    graviton = detect_isa(cpuinfo("fp asimd aes crc32 asimddp i8mm", key="Features"), "aarch64")
    assert graviton.isa == "arm64" and graviton.deciding_flags == ["asimd", "asimddp", "i8mm"]
    assert not graviton.reduce_range
    assert detect_isa("", "arm64").isa == "arm64"  # macOS: no /proc/cpuinfo
    assert detect_isa(cpuinfo("fpu vsx"), "ppc64le").isa is None
    assert detect_isa("", "x86_64").isa is None  # no flags to read: refuse, never assume
    assert detect_isa().machine  # this machine: whatever it is, detection answers


def test_recipes() -> None:
    vnni = CpuIsa("avx512_vnni", "x86_64", "", ["avx512_vnni"], False, "")
    haswell = CpuIsa("avx2", "x86_64", "", ["avx2", "fma"], True, "")
    assert recipe("optimized", vnni) == {"tool": "ORTOptimizer", "level": "O2", "for_gpu": False}
    int8 = recipe("int8", vnni)
    assert int8["preset"] == "avx512_vnni" and int8["per_channel"] and not int8["is_static"]
    assert recipe("int8", haswell)["reduce_range"] is True
    old = CpuIsa(None, "x86_64", "", [], False, "x86_64 CPU without AVX2+FMA")
    with pytest.raises(VariantError, match=r"variant 'int8' cannot be made on this CPU.*AVX2"):
        recipe("int8", old)


def test_variant_names_and_directories(tmp_path: Path) -> None:
    assert ordered(["int8"]) == ["fp32", "int8"]
    assert ordered(["int8", "optimized", "fp32"]) == ["fp32", "optimized", "int8"]
    with pytest.raises(VariantError, match="variant 'fp16': unknown"):
        ordered(["fp32", "fp16"])
    fp32 = paths.default_model_dir("minilm-sentiment")
    for name in ("fp32", "optimized", "int8"):
        assert variant_dir(fp32, name) == paths.variant_model_dir("minilm-sentiment", name)
    assert variant_dir(tmp_path / "m", "int8") == tmp_path / "m.int8"


def test_fingerprint_names_everything_that_makes_a_variant() -> None:
    vnni = CpuIsa("avx512_vnni", "x86_64", "", [], False, "")
    stamp = {"fingerprint": {"model_id": "m"}, "onnx_sha256": "abc"}
    tools = {"optimum": "2.1.0", "onnxruntime": "1.32.0"}
    base = variant_fingerprint("int8", stamp, recipe("int8", vnni), tools)
    assert base == variant_fingerprint("int8", dict(stamp), recipe("int8", vnni), dict(tools))
    assert base["isa"] == "avx512_vnni"
    avx2 = CpuIsa("avx2", "x86_64", "", [], True, "")
    changed = [
        variant_fingerprint("int8", {**stamp, "onnx_sha256": "def"}, recipe("int8", vnni), tools),
        variant_fingerprint("int8", stamp, recipe("int8", avx2), tools),
        variant_fingerprint("int8", stamp, recipe("int8", vnni), {**tools, "optimum": "2.2.0"}),
    ]
    assert all(other != base for other in changed)


def test_optimized_refused_for_unsupported_model_types(tmp_path: Path) -> None:
    from servebench.models.variant_build import check_feasible

    fp32 = tmp_path / "m"
    fp32.mkdir()
    (fp32 / "model.onnx").write_bytes(b"")
    (fp32 / "config.json").write_text(json.dumps({"model_type": "squeezebert"}))
    vnni = CpuIsa("avx512_vnni", "x86_64", "", [], False, "")
    with pytest.raises(VariantError, match="variant 'optimized' cannot be made for model type"):
        check_feasible("optimized", recipe("optimized", vnni), fp32)
    check_feasible("int8", recipe("int8", vnni), fp32)  # quantization does not care
    (fp32 / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    check_feasible("optimized", recipe("optimized", vnni), fp32)
    (fp32 / "model.onnx_data").write_bytes(b"")
    with pytest.raises(VariantError, match=r"variant 'int8' cannot be made.*external data"):
        check_feasible("int8", recipe("int8", vnni), fp32)


def faithfulness(
    agreeing: int, sentences: int = 334, accuracy: float = 0.95, held_out: int = 70
) -> Faithfulness:
    wrong = [{"text": "Great!", "fp32": "POSITIVE", "variant": "NEGATIVE"}]
    return Faithfulness(
        "int8", "/m.int8", sentences, agreeing, 0.2, held_out, accuracy, 0.95, "",
        disagreements=wrong,
    )  # fmt: skip


def test_agreement_check_fails_closed() -> None:
    check_agreement(faithfulness(331), 0.99)  # 99.10 %
    check_agreement(faithfulness(99, 100), 0.99)  # exactly at the threshold
    check_agreement(faithfulness(0), 0.0)
    with pytest.raises(VariantError) as refused:
        check_agreement(faithfulness(330), 0.99)  # 98.80 %
    message = str(refused.value)
    assert "\n" not in message
    for part in ("'int8'", "98.80%", "330", "334", "min_label_agreement=0.99", "'Great!'"):
        assert part in message, part
    with pytest.raises(VariantError, match=r"on 0\.00% of 0 sentences"):
        check_agreement(faithfulness(0, 0), 0.5)  # nothing compared is not agreement


def test_accuracy_may_fall_one_point_or_one_sentence_at_most() -> None:
    # 70 held-out sentences: one weighs 1.43 points, so one may be lost, not two
    one, two = 0.95 - 1 / 70, 0.95 - 2 / 70
    check_agreement(faithfulness(334, accuracy=one), 0.99)
    check_agreement(faithfulness(334, accuracy=0.99), 0.99)  # better than fp32 is fine
    with pytest.raises(VariantError) as refused:
        check_agreement(faithfulness(334, accuracy=two), 0.99)
    for part in ("'int8'", "92.1%", "95.0%", "70 held-out", "1.4% lower"):
        assert part in str(refused.value), part
    # 500 held-out sentences: one weighs 0.2 points, and the 1-point limit holds
    assert allowed_drop(500) == MAX_ACCURACY_DROP and allowed_drop(70) == pytest.approx(1 / 70)
    check_agreement(faithfulness(334, accuracy=0.94, held_out=500), 0.99)  # exactly one point
    with pytest.raises(VariantError, match=r"1\.0% lower"):
        check_agreement(faithfulness(334, accuracy=0.938, held_out=500), 0.99)
    meaningless = faithfulness(334)
    meaningless.held_out_accuracy = meaningless.fp32_held_out_accuracy = None
    check_agreement(meaningless, 0.99)  # no accuracy: only the labels can judge it


def result(variant: str, note: str | None = None) -> VariantResult:
    return VariantResult("m", variant, f"/m.{variant}", "/m", 10**6, ["input_ids"], ["logits"],
                         17, {}, note=note)  # fmt: skip


def test_compare_on_synthetic_answers() -> None:
    examples = sd.load_sentences()[:40]
    truth = [sd.LABELS[e.label] for e in examples]
    probabilities = np.array([[0.1, 0.9] if t == "POSITIVE" else [0.8, 0.2] for t in truth])
    base = Answers(truth, probabilities)
    flipped = ["NEGATIVE" if t == "POSITIVE" else "POSITIVE" for t in truth[:4]] + truth[4:]
    shifted = probabilities.copy()
    shifted[0] = shifted[0][::-1]
    own = Answers(flipped, shifted)
    measured = compare(result("int8"), own, base, examples, "")
    assert (measured.sentences, measured.agreeing) == (40, 36)
    assert measured.label_agreement == pytest.approx(0.9)
    assert measured.max_abs_score_diff == pytest.approx(abs(shifted[0] - probabilities[0]).max())
    held = [i for i, e in enumerate(examples) if sd.is_held_out(e.text)]
    assert measured.held_out_sentences == len(held) and measured.fp32_held_out_accuracy == 1.0
    assert measured.held_out_accuracy == sum(i >= 4 for i in held) / len(held)
    assert measured.disagreements[0] == {"text": examples[0].text, "fp32": truth[0],
                                         "variant": flipped[0]}  # fmt: skip
    meaningless = compare(result("int8"), own, base, examples, "accuracy is meaningless")
    assert meaningless.held_out_accuracy is None and meaningless.fp32_held_out_accuracy is None


def test_accuracy_notes_and_csv_columns() -> None:
    assert accuracy_note(result("fp32"), ["NEGATIVE", "POSITIVE"]) == ""
    assert "meaningless: random" in accuracy_note(result("fp32", "random weights"), sd.LABELS)
    assert "not the sentiment data's" in accuracy_note(result("fp32"), ["LABEL_0", "LABEL_1"])
    results = {"fp32": result("fp32"), "int8": result("int8")}
    frame = variants_frame(results, {"fp32": faithfulness(334), "int8": faithfulness(333)})
    assert list(frame.columns) == CSV_COLUMNS
    assert frame["variant"].tolist() == ["fp32", "int8"]
    assert frame["quantization"].tolist() == ["none", "none"]
